"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from graphql.error import GraphQLError
from starlette.requests import Request
from starlette.responses import Response

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
    another tenant's accounts."""

    request: Request
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

    def served(self, fresh: Fresh, path: Path) -> models.Recording:
        """The recording of ``fresh``, placed at ``path`` of the answer (noted if stale)."""
        if fresh.stale:
            self.stale_paths.append(path)
        return fresh.recording

    @property
    def recordings(self) -> RecordingService:
        return self.tenant.recordings

    def close(self) -> None:
        """The answer is built: let go of everything the request made, at once.

        graphql-core 3.3's execution context is a reference cycle of its own (its
        ``async_helpers`` are bound methods of itself), freed only by the cycle collector,
        and it references this context (``context_value``). Without this, the request, its
        response, uvicorn's request cycle behind them and the loaders with every recording
        they loaded would all wait for that collector; emptied, the context holds nothing.
        Nothing reads a context once its answer is built (tests/test_no_cycles.py)."""
        vars(self).clear()
