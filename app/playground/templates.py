"""The playground's Jinja templates and static files, both shipped inside the package."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from jinja2 import StrictUndefined
from litestar import Request, Router
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from localoip.app.playground.jobs import Render
from localoip.runtimes.wire.controls import REASONING_EFFORTS

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Only the page's own files run, even if some text were ever mistaken for HTML; no framing."""


def _configure(engine: JinjaTemplateEngine) -> None:
    # A misspelt variable is an error in tests, not a silently empty string on the page.
    engine.engine.undefined = StrictUndefined
    # Block tags leave no blank lines behind, which keeps HTML sent over SSE compact.
    engine.engine.trim_blocks = True
    engine.engine.lstrip_blocks = True
    # The efforts a chat may ask for, as the settings form offers them.
    engine.engine.globals["reasoning_efforts"] = REASONING_EFFORTS
    engine.engine.filters["clock"] = clock


def clock(seconds: float) -> str:
    """A time in audio as 1:02.5 (minutes, seconds to a tenth); hours when there are some."""
    tenths = round(seconds * 10)
    minutes, tenths = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    head = f"{hours}:{minutes:02d}" if hours else f"{minutes}"
    return f"{head}:{tenths // 10:02d}.{tenths % 10}"


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(
        directory=Path(str(files("localoip.templates"))),
        engine=JinjaTemplateEngine,
        engine_callback=_configure,
    )


def static_router() -> Router:
    folder = Path(str(files("localoip.static")))
    return create_static_files_router(path="/static", directories=[folder])


def renderer(request: Request) -> Render:
    """render(name, **context) with the app's template engine, for HTML sent over SSE."""
    engine = request.app.template_engine

    def render(name: str, **context: object) -> str:
        return engine.get_template(name).render(**context)

    return render
