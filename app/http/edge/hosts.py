"""Which Host headers the server answers: loopback names, its bound address, allowed_hosts.

A page on a domain that rebinds its DNS to 127.0.0.1 reaches the server with its own name
in Host; refusing unknown names is what stops it (Ollama's CVE-2024-28224).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from localoip.app.core.hosts import ANY_HOST, host_name

WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def ip_of(name: str) -> Address | None:
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def is_loopback(name: str) -> bool:
    """localhost, any *.localhost (RFC 6761), 127.0.0.0/8 and ::1."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    address = ip_of(name)
    return address is not None and address.is_loopback


@dataclass(frozen=True, slots=True)
class HostPolicy:
    """The Host names a server bound to `bound` answers, beyond the loopback ones."""

    bound: str
    allowed: frozenset[str]  # normalised by host_name(), or "*"

    @classmethod
    def of(cls, bound: str, allowed_hosts: list[str]) -> HostPolicy:
        names = {h if h == ANY_HOST else host_name(h) for h in allowed_hosts}
        return cls(bound.strip("[]").lower(), frozenset(n for n in names if n))

    @property
    def open(self) -> bool:
        return ANY_HOST in self.allowed

    def allows(self, host: str | None) -> bool:
        if self.open:
            return True
        name = host_name(host) if host else None
        if name is None:
            return False
        return is_loopback(name) or name in self.allowed or self._is_bound(name)

    def _is_bound(self, name: str) -> bool:
        address = ip_of(name)
        if address is None:
            return name == self.bound.removesuffix(".")
        if self.bound in WILDCARD_ADDRESSES:
            # Bound to every interface, any of this machine's addresses may arrive. An address
            # cannot be rebound, so accepting every literal address opens no door.
            return True
        return address == ip_of(self.bound)


def exposure_warning(bound: str, key_set: bool) -> str | None:
    """What to tell the user when the server listens beyond loopback; None when it does not."""
    if is_loopback(bound.strip("[]").lower().removesuffix(".")):
        return None
    guard = (
        "requests need the API key"
        if key_set
        else "no API key is set, so anyone who can reach it can run every model and read "
        "stored conversations (set LOCALOIP_API_KEY)"
    )
    return (
        f"listening on {bound}: the API is reachable from the network, and {guard}. Host names "
        "other than loopback ones and IP addresses are refused unless listed in "
        "[server] allowed_hosts"
    )
