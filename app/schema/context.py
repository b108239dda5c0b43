"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql.error import GraphQLError
from starlette.requests import Request
from starlette.responses import Response

from app.access.ratelimit import RateLimiter
from app.media.links import MediaLinks
from app.recordings import RecordingService
from app.schema.http_cache import Freshness
from app.schema.loaders import Loaders
from app.settings import Settings
from app.signing import Signer
from app.tenants import Tenant


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
    # How long the answer may be cached (``app.schema.http_cache``): what it serves reports here.
    freshness: Freshness = field(default_factory=Freshness)
    # Errors of a field that still resolved (a listing with one provider down); see
    # ``app.schema.errors.report``.
    reported_errors: list[GraphQLError] = field(default_factory=list)

    @property
    def recordings(self) -> RecordingService:
        return self.tenant.recordings
