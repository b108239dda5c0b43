"""``GET /metrics``: the gateway's metrics (``app.metrics.exposition``: this process's, or every
worker's merged) in Prometheus' text format.

With ``GATEWAY_METRICS_TOKEN`` set, a scrape must carry ``Authorization: Bearer <token>``
(compared in constant time), else 401 in the gateway's ``{"errors": [...]}`` shape; a
Prometheus ``scrape_config`` sends it with ``authorization: {credentials: ...}``. Unset, the
endpoint is open, like ``/livez``: it holds counts only, whose labels are bounded names
(providers, tenants, statuses, operation names) and never an id, a key or a token.

It is outside the GraphQL gate: a scraper is no tenant, and needs no API key.
"""

from __future__ import annotations

import hmac

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from app.access.gate import refusal
from app.errors import UnauthenticatedError
from app.metrics import exposition
from app.settings import Settings


async def metrics(request: Request) -> Response:
    """The scrape, or 401 without the configured token."""
    settings: Settings = request.state.settings
    if settings.metrics_token is not None and not _bearer_matches(
        request.headers.get("authorization"), str(settings.metrics_token)
    ):
        return refusal(
            UnauthenticatedError("send the metrics token as Authorization: Bearer <token>")
        )
    return Response(
        exposition(),
        media_type=CONTENT_TYPE_LATEST,
        headers={"cache-control": "no-store"},
    )


def _bearer_matches(header: str | None, token: str) -> bool:
    scheme, _, credentials = (header or "").partition(" ")
    # Bytes, not str: compare_digest refuses a str that is not ASCII.
    given = credentials.strip().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(given, token.encode())
