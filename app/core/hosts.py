"""Host names as models.toml's `allowed_hosts` and a request's Host header give them."""

from __future__ import annotations

import ipaddress
import re

ANY_HOST = "*"
HOSTNAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")


def host_name(value: str) -> str | None:
    """The name or address in a Host header (or `host[:port]`), lower-cased, without its port
    or a trailing dot; IPv6 addresses in their short form. None when it is malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        address, bracket, port = value[1:].partition("]")
        if not bracket or (port and not (port[0] == ":" and port[1:].isdigit())):
            return None
        try:
            return str(ipaddress.IPv6Address(address))
        except ValueError:
            return None
    name, colon, port = value.partition(":")
    if colon and not port.isdigit():
        return None  # a second colon (a bare IPv6 address), or a port that is not a number
    name = name.removesuffix(".")
    return name if HOSTNAME.fullmatch(name) else None
