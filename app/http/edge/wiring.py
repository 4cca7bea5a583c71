"""The edge, gathered for create_app: the Host, Origin, media-type and key checks (one
before-request hook), request-body decoding (middleware), response compression, and the
playground's sign-in sessions.
"""

from __future__ import annotations

import logging

from localoip.app.core.config import ServerSettings
from localoip.app.http.edge.auth import require_key
from localoip.app.http.edge.checks import edge_checks
from localoip.app.http.edge.compression import decode_bodies, response_compression
from localoip.app.http.edge.hosts import HostPolicy, exposure_warning
from localoip.app.http.edge.session import Sessions

log = logging.getLogger("localoip")


class Edge:
    """The edge for one server's settings and API key (None: no key is checked)."""

    def __init__(self, server: ServerSettings, api_key: str | None) -> None:
        self.key_env = server.api_key_env if api_key else None  # for the playground's code
        self.sessions = Sessions(api_key, server.session_hours * 3600) if api_key else None
        auth = require_key(api_key, self.sessions) if api_key and self.sessions else None
        self.before_request = edge_checks(
            HostPolicy.of(server.host, server.allowed_hosts), server.cors_origins, auth
        )
        self.decode_bodies = decode_bodies(server.max_body_bytes)
        self.compression = response_compression()
        warning = exposure_warning(server.host, api_key is not None)
        if warning:
            log.warning(warning)
