"""The Embeddings tab: sentences in; a cosine-similarity heatmap, a 2-D map with each sentence's
nearest neighbours, and optionally how far a second model agrees on those neighbours, out."""

from __future__ import annotations

from dataclasses import dataclass

from litestar import Controller, post
from litestar.datastructures import FormMultiDict
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import Registry
from localoip.app.playground import snippets
from localoip.app.playground.embedding_map import map_svg, nearest, overlap, pca_2d
from localoip.app.playground.forms import text
from localoip.app.playground.heatmap import cosine_matrix, extremes, heatmap_svg
from localoip.app.playground.messages import require_usable
from localoip.runtimes.capabilities import Capability

MAX_SENTENCES = 24
"""Beyond this a heatmap stops being something one can look at."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """A second model's nearest neighbours of the same sentences, and per sentence the share
    of them the first model names too."""

    model: str
    neighbours: list[list[int]]
    overlap: list[float]

    @property
    def mean(self) -> float:
        return sum(self.overlap) / len(self.overlap)


def sentences(form: FormMultiDict) -> list[str]:
    """One sentence per non-blank line."""
    return [line.strip() for line in text(form, "sentences").splitlines() if line.strip()]


class EmbeddingsController(Controller):
    path = "/ui/embeddings"

    @post("/", status_code=200)
    async def compare(self, request: HTMXRequest, registry: Registry) -> HTMXTemplate:
        form = await request.form()
        given = sentences(form)
        if len(given) < 2:
            raise InvalidInput("Enter at least two sentences, one per line.", "sentences")
        if len(given) > MAX_SENTENCES:
            raise InvalidInput(
                f"Compare at most {MAX_SENTENCES} sentences at a time; there are {len(given)}.",
                "sentences",
            )
        handle = registry.get(text(form, "model"))
        require_usable(handle, Capability.EMBED)
        other = None
        if other_name := text(form, "other_model"):
            other = registry.get(other_name)
            require_usable(other, Capability.EMBED)
            if other is handle:
                raise InvalidInput("Compare with a different model, or with none.", "other_model")
        result = await handle.embed(given)
        matrix = cosine_matrix(result.vectors)
        coords, share = pca_2d(result.vectors)
        neighbours = nearest(result.vectors)
        agreement = None
        if other is not None:
            theirs = nearest((await other.embed(given)).vectors)
            agreement = Agreement(other.name, theirs, overlap(neighbours, theirs))
        return HTMXTemplate(
            template_name="playground/heatmap.html",
            context={
                "model": handle.name,
                "dimensions": result.vectors.shape[1],
                "sentences": given,
                "svg": heatmap_svg(given, matrix),
                "extremes": extremes(matrix),
                "map_svg": map_svg(given, coords, share),
                "neighbours": neighbours,
                "similarity": matrix,
                "agreement": agreement,
            },
        )

    @post("/code", status_code=200)
    async def code(self, request: HTMXRequest, api_key_env: str | None) -> HTMXTemplate:
        form = await request.form()
        server = str(request.base_url).rstrip("/")
        example = sentences(form) or ["a cat sits on the mat", "a kitten rests on a rug"]
        return HTMXTemplate(
            template_name="playground/code.html",
            context={
                "what": "these sentences",
                "snippets": snippets.embeddings(server, text(form, "model"), example, api_key_env),
            },
        )
