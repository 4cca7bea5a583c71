"""Reading the playground's form fields, with errors a person understands."""

from __future__ import annotations

from litestar.datastructures import FormMultiDict
from localoip.app.core.errors import InvalidInput


def text(form: FormMultiDict, name: str) -> str:
    """A text field as typed, with browsers' CRLF line breaks made plain."""
    value = form.get(name)
    return value.replace("\r\n", "\n") if isinstance(value, str) else ""


def texts(form: FormMultiDict, name: str) -> list[str]:
    return [v.replace("\r\n", "\n") for v in form.getall(name, []) if isinstance(v, str)]


def number(form: FormMultiDict, name: str, label: str, low: float, high: float) -> float | None:
    """A number field; blank means "the model's default"."""
    return number_of(text(form, name), name, label, low, high)


def number_of(raw: str, name: str, label: str, low: float, high: float) -> float | None:
    """A number typed in field `name` (one of several of that name); blank is None."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a number, not “{raw}”.", name) from None
    if not low <= value <= high:
        raise InvalidInput(f"{label} must be between {low:g} and {high:g}; it is {raw}.", name)
    return value


def integer(form: FormMultiDict, name: str, label: str, low: int, high: int) -> int | None:
    """A whole-number field; blank means "the model's default"."""
    return integer_of(text(form, name), name, label, low, high)


def integer_of(raw: str, name: str, label: str, low: int, high: int) -> int | None:
    """A whole number typed in field `name` (or one of a list); blank is None."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a whole number, not “{raw}”.", name) from None
    if not low <= value <= high:
        raise InvalidInput(f"{label} must be from {low} to {high}; it is {raw}.", name)
    return value
