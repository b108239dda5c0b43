"""The per-request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql.error import GraphQLError
from starlette.requests import Request

from app.media.links import MediaLinks
from app.recordings import RecordingService
from app.schema.loaders import Loaders
from app.settings import Settings
from app.signing import Signer


@dataclass
class Context:
    """Built fresh for every request by ``GatewayGraphQL.get_context``, over the services the
    lifespan built once (``app.main.GatewayState``)."""

    request: Request
    settings: Settings
    recordings: RecordingService
    loaders: Loaders
    signer: Signer
    media: MediaLinks
    # Errors of a field that still resolved (a listing with one provider down); see
    # ``app.schema.errors.report``.
    reported_errors: list[GraphQLError] = field(default_factory=list)
