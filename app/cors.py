"""Cross-origin access for browser frontends: ``GATEWAY_CORS_ORIGINS`` through Starlette's
``CORSMiddleware``.

Unset, there is no middleware and so no CORS header at all: only pages of the gateway's own
origin (GraphiQL) may read its answers. Set, the middleware wraps the whole app, outside the
routes, for two reasons:

- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) must be answered before
  the gate of ``/graphql`` (which refuses every method but GET and POST with 405) and before
  the router (``/media/{token}`` serves GET and HEAD only);
- every answer of a route carries the headers, refusals included (401, 413, 429, 416...), so
  that a frontend can read why it was refused.

Only ``/graphql`` and ``/media/*`` need it; the other paths (``/``, ``/healthz``, static
assets, the demo's ``/sandbox``) hold nothing a caller without credentials could not read
with any HTTP client already, so the same policy on them opens nothing.

Credentials are never allowed (``allow_credentials=False``): the gateway reads bearer headers,
not cookies, and ``*`` is only valid without them. Nor private-network access: a preflight
asking for it (``Access-Control-Request-Private-Network``, sent by browsers when a public
website calls a loopback or private address) is refused, so a demo's ``*`` on loopback does
not open it to every website a developer visits.
"""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from app.settings import Settings

#: GET and POST for /graphql, GET and HEAD for /media.
ALLOW_METHODS = ("GET", "POST", "HEAD")
#: What a frontend sends: its API key or token, a JSON body, a request id to trace by, a byte
#: range of a recording, the cost estimate switch, and a revalidation of a cached read.
ALLOW_HEADERS = (
    "Authorization",
    "Content-Type",
    "X-Request-ID",
    "Range",
    "X-Gateway-Cost",
    "If-None-Match",
)
#: What a frontend may read beyond the CORS-safelisted response headers: media ranges and
#: sizes (for a player or a waveform), the download name, when to retry, and the cache
#: validator, and the request id to quote in a support ticket.
EXPOSE_HEADERS = (
    "Content-Range",
    "Accept-Ranges",
    "Content-Length",
    "Content-Disposition",
    "Retry-After",
    "ETag",
    "X-Request-ID",
)
#: Seconds a browser may remember a preflight answer (Chromium caps it at 7200).
MAX_AGE = 600


def cors_middleware(settings: Settings) -> list[Middleware]:
    """The app's CORS middleware, or none when no origin is allowed."""
    if not settings.cors_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            expose_headers=EXPOSE_HEADERS,
            allow_credentials=False,
            max_age=MAX_AGE,
        )
    ]
