"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias

from graphql.error import GraphQLError
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket

from app import models
from app.access.ratelimit import RateLimiter
from app.cache import Fresh
from app.events import EventBus
from app.media.links import MediaLinks
from app.recordings import RecordingService
from app.schema.http_cache import Freshness
from app.schema.loaders import Loaders
from app.settings import Settings
from app.signing import Signer
from app.tenants import Tenant

#: Where a value is in the answer, as GraphQL writes it in ``errors[].path``.
Path: TypeAlias = list[str | int]


@dataclass
class Context:
    """Built fresh for every request by ``GatewayGraphQL.get_context``, over the services the
    lifespan built once (``app.main.GatewayState``) and the caller the gate authenticated.

    ``recordings`` and ``loaders`` are the caller's tenant's: nothing in a request reaches
    another tenant's accounts.

    Over a WebSocket (subscriptions) there is one context per connection: ``request`` is the
    WebSocket, ``response`` a stand-in nothing sends, and ``connection_params`` the payload
    of the client's ``connection_init``."""

    request: HTTPConnection
    response: Response
    settings: Settings
    tenant: Tenant
    scopes: frozenset[str]
    loaders: Loaders
    signer: Signer
    media: MediaLinks
    limiter: RateLimiter
    events: EventBus
    # How long the answer may be cached (``app.schema.http_cache``): what it serves reports here.
    freshness: Freshness = field(default_factory=Freshness)
    # Errors of a field that still resolved (a listing with one provider down); see
    # ``app.schema.errors.report``.
    reported_errors: list[GraphQLError] = field(default_factory=list)
    # Where the answer holds a recording served stale (past its TTL, the provider failing):
    # the view lists them in the answer's top-level ``extensions.stale``.
    stale_paths: list[Path] = field(default_factory=list)
    # What the client sent in ``connection_init`` (WebSocket only; Strawberry sets it).
    connection_params: dict[str, Any] | None = None

    def served(self, fresh: Fresh, path: Path) -> models.Recording:
        """The recording of ``fresh``, placed at ``path`` of the answer (noted if stale)."""
        if fresh.stale:
            self.stale_paths.append(path)
        return fresh.recording

    @property
    def recordings(self) -> RecordingService:
        return self.tenant.recordings

    @property
    def streaming(self) -> bool:
        """Whether this is a WebSocket connection (subscriptions), not one HTTP request."""
        return isinstance(self.request, WebSocket)

    @property
    def base_url(self) -> str:
        """Where the client reached the gateway, as an HTTP URL (a WebSocket's ``ws``/``wss``
        made ``http``/``https``): the base of the links handed out."""
        url = self.request.base_url
        if url.scheme in ("ws", "wss"):
            url = url.replace(scheme="https" if url.scheme == "wss" else "http")
        return str(url)

    def close(self) -> None:
        """The answer is built: let go of everything the request made, at once.

        graphql-core 3.3's execution context is a reference cycle of its own (its
        ``async_helpers`` are bound methods of itself), freed only by the cycle collector,
        and it references this context (``context_value``). Without this, the request, its
        response, uvicorn's request cycle behind them and the loaders with every recording
        they loaded would all wait for that collector; emptied, the context holds nothing.
        Nothing reads a context once its answer is built (tests/test_no_cycles.py)."""
        vars(self).clear()
