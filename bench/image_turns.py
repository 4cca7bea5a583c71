"""A conversation about one image over three turns: time to first token, cached and uncached.

Each turn re-sends the whole conversation, the image in its first message, as OpenAI clients
do. With the prefix cache keyed on images, turns 2 and 3 reuse the image's cells: it is
neither encoded nor decoded again. Uncached, the same conversation with a system message that
changes every turn (so no prefix is shared) pays the image on every turn.

The model is the tests' tiny vision pair, its projector enlarged to cost about what a real
one does on a CPU: a CLIP-style ViT of 224 px images in 16 px patches (196 image tokens),
width 512, 12 blocks, F32. Both paths run: `parallel = 1` (the serial path) and 4 slots (the
batching engine). Prints each turn's TTFT (median over runs) and uncached ÷ cached for turns
2 and 3.
"""

from __future__ import annotations

import asyncio
import base64
import io
import tempfile
from pathlib import Path

import numpy as np
from common import SETTLE, Figure, localoip, median, model_toml, run, session, stream_chat

QUESTIONS = ["What is in this picture?", "What colours are in it?", "Describe its top half."]
REPLY_TOKENS = 8


def picture(seed: int) -> str:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def pair(folder: Path) -> tuple[Path, Path]:
    from support.tiny_models import build_tiny_gguf
    from support.tiny_vision import VISION_TEMPLATE, build_tiny_projector

    model = build_tiny_gguf(
        folder / "tiny-vision.gguf", "tiny-vision", template=VISION_TEMPLATE, attn_std=0.3
    )
    mmproj = build_tiny_projector(
        folder / "mmproj.gguf", image_size=224, patch_size=16, width=512, n_block=12
    )
    return model, mmproj


async def conversation(url: str, model: str, run: int, cached: bool) -> list[float]:
    """TTFT in seconds of each turn; uncached, the system message changes every turn."""
    image = {"type": "image_url", "image_url": {"url": picture(run)}}
    history: list[dict] = []
    ttfts = []
    async with session() as client:
        for turn, question in enumerate(QUESTIONS):
            content: list[dict] = [{"type": "text", "text": question}]
            history.append({"role": "user", "content": [*content, image] if turn == 0 else content})
            system = f"Session {run}" + ("" if cached else f", turn {turn}")
            body = {
                "model": model,
                "messages": [{"role": "system", "content": system}, *history],
                "max_tokens": REPLY_TOKENS,
                "temperature": 0,
                "stream": True,
            }
            await asyncio.sleep(SETTLE)
            stream = await stream_chat(client, url, body)
            if stream.error or not stream.stamps:
                raise RuntimeError(f"{model}: {stream.error or 'an empty reply'}")
            ttfts.append(stream.ttft)
            history.append({"role": "assistant", "content": stream.text})
    return ttfts


def measure(runs: int, threads: int) -> list[Figure]:
    folder = Path(tempfile.mkdtemp(prefix="bench-image-turns-"))
    model, mmproj = pair(folder)

    def eyes(name: str, parallel: int) -> str:
        return model_toml(
            name, "llama-cpp", str(model), n_ctx=2048, threads=threads, mmproj=str(mmproj),
            parallel=parallel,
        )  # fmt: skip

    figures = []
    with localoip(eyes("serial", 1) + eyes("engine", 4)) as server:
        for name in ("serial", "engine"):
            rows: dict[bool, list[list[float]]] = {True: [], False: []}
            for r in range(runs):
                for cached in (False, True):
                    rows[cached].append(asyncio.run(conversation(server.url, name, r, cached)))
            turns = {
                cached: [median(row[t] for row in rows[cached]) * 1e3 for t in range(3)]
                for cached in rows
            }
            for cached, values in turns.items():
                label = "cached" if cached else "uncached"
                print(
                    f"{name:7} {label:9} TTFT by turn (ms): "
                    + "  ".join(f"{v:7.1f}" for v in values)
                )
            later = {cached: sum(values[1:]) for cached, values in turns.items()}
            figures += [
                Figure(f"image TTFT turn 1, {name}", turns[True][0], "ms"),
                Figure(f"image TTFT turns 2-3 uncached, {name}", later[False], "ms"),
                Figure(f"image TTFT turns 2-3 cached, {name}", later[True], "ms"),
                Figure(
                    f"image turns 2-3 uncached ÷ cached, {name}", later[False] / later[True], "x"
                ),
            ]
    return figures


def main() -> None:
    run(__doc__, measure, runs=5, threads=1)


if __name__ == "__main__":
    main()
