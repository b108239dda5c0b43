"""The GraphQL endpoint: Strawberry's ASGI app with a typed, per-request context.

It sits behind the gate (``app.access.gate``), which has authenticated the caller and
checked the body: the context is built for the caller's tenant. What Strawberry itself still
refuses over HTTP (an unknown ``operationName``, a mutation over GET) leaves in the gate's
typed ``{"errors": [...]}`` shape rather than as Strawberry's plain text.

Every answer leaves with its HTTP caching headers (``app.schema.http_cache``): the request's
``Freshness`` is made here, handed to the context (``request.state.freshness``), told of any
error in the result (``process_result``), and read once the body is built. The paths the
resolvers served stale (``Context.stale_paths``, made here too) go out in the answer's
top-level ``extensions.stale``, in the same form as ``errors[].path``. The request's
deadline (``GATEWAY_REQUEST_TIMEOUT``, ``app.resilience.deadline``) is opened here too: every
provider call the request makes ends by then.

An answer that can be shared is kept whole by the response cache (``app.responses``), which
the gate answers from next time; every answer of a request it looked up says ``X-Cache: MISS``.

The request's outcome for the metrics (``app.metrics.graphql``) is left in its state for the
gate, which counts it: what the result holds, or ``refused`` for any 4xx (Strawberry's own
refusals, the tenant's rate limit), where nothing was executed.
"""

from __future__ import annotations

from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from app.access.authenticate import Principal
from app.access.gate import refusal
from app.errors import BadRequestError, MethodNotAllowedError
from app.metrics.graphql import ERROR, OK, OUTCOME, PARTIAL, REFUSED
from app.resilience.deadline import request_deadline
from app.responses import answer
from app.schema import GatewaySchema, http_cache
from app.schema.context import Context, Path
from app.schema.http_cache import Freshness
from app.schema.loaders import Loaders
from app.settings import Settings


class GatewayGraphQL(GraphQL[Context, None]):
    """Serves queries on GET and POST at ``/graphql`` (the gate serves GraphiQL's page:
    ``app.explorer``, never Strawberry's, which loads its files from a public CDN)."""

    def __init__(self, schema: GatewaySchema, **kwargs: Any) -> None:
        super().__init__(schema, graphql_ide=None, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = _Request(scope, receive)
        freshness = request.state.freshness = Freshness()
        settings: Settings = request.state.settings
        request.state.stale_paths = []
        try:
            with request_deadline(settings.request_timeout):
                response = await self.run(request)
        except HTTPException as exc:  # what Strawberry's own __call__ sends as plain text
            kind = MethodNotAllowedError if exc.status_code == 405 else BadRequestError
            response = refusal(kind(exc.reason))
        finally:
            # graphql-core's execution context, a cycle, keeps the context: empty it now
            # (Context.close), so the request's objects go by reference counting.
            if request.context is not None:
                request.context.close()
        if 400 <= response.status_code < 500:
            scope["state"][OUTCOME] = REFUSED
        await answer.keep(request, response, freshness)  # the response cache (app.responses)
        await http_cache.apply(request, response, freshness)(scope, receive, send)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        if result.errors:
            freshness: Freshness = request.state.freshness
            freshness.no_store("an error")
            request.scope["state"][OUTCOME] = ERROR if result.data is None else PARTIAL
        else:
            request.scope["state"][OUTCOME] = OK
        response = await super().process_result(request, result)
        stale: list[Path] = request.state.stale_paths
        if stale:
            response["extensions"] = {**(response.get("extensions") or {}), "stale": stale}
        return response

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert isinstance(request, Request), "subscriptions are not served"
        assert isinstance(response, Response)
        principal: Principal = request.state.principal
        freshness: Freshness = request.state.freshness
        context = Context(
            request=request,
            response=response,
            settings=request.state.settings,
            tenant=principal.tenant,
            scopes=principal.scopes,
            loaders=Loaders.for_request(principal.tenant.recordings, freshness),
            signer=request.state.signer,
            media=request.state.media,
            limiter=request.state.limiter,
            events=request.state.events,
            freshness=freshness,
            stale_paths=request.state.stale_paths,
        )
        if isinstance(request, _Request):  # ``__call__`` closes it once the answer is built
            request.context = context
        return context


class _Request(Request):
    """The request ``GatewayGraphQL.__call__`` hands to Strawberry, which brings back the
    context built for it (not in ``request.state``: that may be shared by requests)."""

    context: Context | None = None
