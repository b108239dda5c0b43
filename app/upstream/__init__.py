"""The gateway's one way out to the providers: ``Upstream`` (``client``) over a transport.

``build_transport(settings)`` builds the transport ``GATEWAY_UPSTREAM_TRANSPORT`` names:
``aiohttp`` (``aiohttp_transport``, the default: half the CPU per call) or ``httpx``
(``httpx_transport``, httpx's own). Both get the pool size, the egress proxies
(``proxies``) and the one TLS context (``tls``) from the settings, and answer alike:
the same errors, the same bodies (tests/upstream/ runs every test against both).
"""

from __future__ import annotations

import httpx

from app.settings import Settings
from app.upstream.aiohttp_transport import AiohttpTransport
from app.upstream.httpx_transport import HttpxTransport
from app.upstream.proxies import Proxies
from app.upstream.tls import tls_context

TRANSPORTS: dict[str, type[AiohttpTransport | HttpxTransport]] = {
    "aiohttp": AiohttpTransport,
    "httpx": HttpxTransport,
}


def build_transport(settings: Settings) -> httpx.AsyncBaseTransport:
    """The upstream transport the settings describe (opened on its first request)."""
    upstream = settings.upstream
    return TRANSPORTS[upstream.transport](
        max_connections=upstream.max_connections,
        tls=tls_context(upstream.ca_file),
        proxies=Proxies.from_settings(upstream),
    )
