"""The GraphQL endpoint: Strawberry's ASGI app with a typed, per-request context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from app.recordings import RecordingService
from app.schema import schema
from app.schema.context import Context
from app.schema.loaders import Loaders


class GatewayGraphQL(GraphQL[Context, None]):
    """Serves GraphiQL on GET and queries on POST at ``/graphql``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(schema, graphql_ide="graphiql", **kwargs)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request), "subscriptions are not served"
        recordings: RecordingService = request.state.recordings
        return Context(
            request=request,
            settings=request.state.settings,
            recordings=recordings,
            loaders=Loaders.for_request(recordings),
            signer=request.state.signer,
            media=request.state.media,
        )
