"""The Embeddings tab: sentences in, a cosine-similarity heatmap out."""

from __future__ import annotations

from litestar import Controller, post
from litestar.datastructures import FormMultiDict
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.errors import InvalidInput
from localoip.app.registry import Registry
from localoip.app.ui import snippets
from localoip.app.ui.forms import text
from localoip.app.ui.heatmap import cosine_matrix, extremes, heatmap_svg
from localoip.app.ui.messages import require_ready
from localoip.runtimes.base import Capability

MAX_SENTENCES = 24
"""Beyond this a heatmap stops being something one can look at."""


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
        require_ready(handle, Capability.EMBED)
        result = await handle.embed(given)
        matrix = cosine_matrix(result.vectors)
        return HTMXTemplate(
            template_name="playground/heatmap.html",
            context={
                "model": handle.name,
                "dimensions": result.vectors.shape[1],
                "sentences": given,
                "svg": heatmap_svg(given, matrix),
                "extremes": extremes(matrix),
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
