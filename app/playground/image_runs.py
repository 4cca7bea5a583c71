"""Run cards of stored image results: what made the pictures (model, file digest, every
parameter, each picture's seed, server version), and a run again compared pixel for pixel."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass, replace

import numpy as np
from localoip.app.core.errors import Conflict
from localoip.app.playground.records.image_results import ImageResult
from localoip.runtimes.capabilities import ImageRequest


@dataclass(frozen=True, slots=True)
class Difference:
    """How two pictures differ: the share of pixels with any channel changed (0 to 1) and the
    largest change of a channel (0 to 255); None for both when their sizes differ."""

    share: float | None
    largest: int | None


def picture_difference(before: bytes, after: bytes) -> Difference | None:
    """None when two PNGs hold the same pixels (equal bytes, or equal once decoded), else how
    they differ. Decoding needs Pillow, which the images extra installs; without it, unequal
    bytes count as different, by an unknown amount."""
    if before == after:
        return None
    try:
        from PIL import Image
    except ImportError:
        return Difference(None, None)
    a, b = (np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")) for png in (before, after))
    if a.shape != b.shape:
        return Difference(None, None)
    changed = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if not changed.any():
        return None
    return Difference(float(changed.any(axis=-1).mean()), int(changed.max()))


@dataclass(frozen=True, slots=True)
class PictureVerdict:
    """One picture made again: its seed, its PNG, and how it differs from the stored one."""

    seed: int
    png: bytes
    difference: Difference | None

    @property
    def identical(self) -> bool:
        return self.difference is None

    @property
    def data_url(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode()

    @property
    def words(self) -> str:
        found = self.difference
        if found is None:
            return "identical"
        if found.share is None:
            return "different"
        return f"{found.share:.1%} of pixels differ, by up to {found.largest} of 255"


@dataclass(frozen=True, slots=True)
class ImagesVerdict:
    pictures: list[PictureVerdict]
    changes: list[str]

    @property
    def differing(self) -> list[PictureVerdict]:
        return [p for p in self.pictures if not p.identical]

    @property
    def identical(self) -> bool:
        return not self.differing


def rerun_request(result: ImageResult) -> ImageRequest:
    """The request that makes `result`'s pictures again: as it ran, from the first picture's
    seed (picture i of seed s is seed s+i). Conflict (409) for images that did not finish or
    were made before run cards recorded their request."""
    if result.status != "done" or not result.pictures:
        raise Conflict("These images did not finish, so there is nothing to compare.", "run")
    if result.ran is None:
        raise Conflict("These images were made before run cards kept their request.", "run")
    return replace(result.ran, seed=result.pictures[0].seed, n=len(result.pictures))


def image_card_fields(result: ImageResult) -> list[tuple[str, str]]:
    """What an image run card lists, in order: model, digest, version, seeds, then every
    parameter the model was given."""
    seeds = [p.seed for p in result.pictures]
    fields = [
        ("Model", result.model),
        ("Model file digest", result.digest or "not recorded"),
        ("Server version", result.server_version or "not recorded"),
        ("Seed", " ".join(map(str, seeds)) or "none: no picture was finished"),
        ("Prompt", result.prompt),
    ]
    ran = result.ran
    if ran is not None:
        if ran.negative_prompt:
            fields.append(("Negative prompt", ran.negative_prompt))
        if ran.width and ran.height:
            fields.append(("Size", f"{ran.width}x{ran.height} pixels"))
        for name, value in (("Steps", ran.steps), ("Guidance scale", ran.guidance_scale)):
            if value is not None:
                fields.append((name, f"{value:g}"))
        fields.append(("Pictures", str(ran.n)))
    fields.append(("Status", result.status if not result.error else result.error))
    return fields
