"""The GraphQL endpoint: Strawberry's schema with a typed, per-request context.

It sits behind the gate (``app.access.gate``), which has authenticated the caller, read and
checked the body (or the GET's parameters) and put the persisted query's document in: over
HTTP the view runs that request (``request.state.operation``) with ``Schema.execute`` and
writes the answer itself. Strawberry's HTTP view (its own request parsing, content types,
batches, multipart uploads and streamed results, none of which the gateway serves) is not on
the path: it would read and parse the body a second time. What the schema refuses before
executing (an unknown ``operationName``, a mutation over GET) leaves in the gate's typed
``{"errors": [...]}`` shape, as BAD_REQUEST.

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
gate, which counts it: what the result holds, or ``refused`` for any 4xx (what the schema
refuses before executing, the tenant's rate limit), where nothing was executed.

**WebSockets** (subscriptions) reach the view past the gate, which handles HTTP only. They
speak ``graphql-transport-ws`` alone (the legacy ``graphql-ws`` protocol is not offered: a
client asking only for it is closed with 4406). The client authenticates in
``connection_init``, with the same credentials as over HTTP, as ``{"Authorization": "Bearer
…"}`` or ``{"headers": {"Authorization": "Bearer …"}}`` (Apollo Client's and GraphiQL's
shape); an ``Authorization`` header on the handshake itself is used when the payload has
none. Missing or refused credentials, or credentials without ``recordings:read``, close the
socket with 4403 (``on_ws_connect``). Strawberry gives a connection one context, made when
the socket is accepted and before anyone is known: it starts empty (reading it fails) and is
filled in once ``connection_init`` has named the caller. Bounds: ``connection_init`` must come
within ``GATEWAY_WS_INIT_TIMEOUT`` seconds (else 4408), a connection runs at most
``GATEWAY_WS_MAX_SUBSCRIPTIONS`` operations at once, and every document meets the same limits
as over HTTP (tokens, depth, aliases, the allowlist of persisted queries). Browsers may open
one from the origins ``GATEWAY_CORS_ORIGINS`` allows (or the gateway's own).

This relies on Strawberry's handler keeping the object ``get_context`` returned for the whole
connection, setting its ``connection_params`` and handing it to ``on_ws_connect``: the
tests of tests/events/test_subscriptions.py that authenticate fail if a release changes it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from app.access.authenticate import Authenticator, Principal
from app.access.gate import refusal
from app.errors import BadRequestError, RequestRefusedError, UnauthenticatedError
from app.metrics.graphql import ERROR, OK, OUTCOME, PARTIAL, REFUSED
from app.resilience.deadline import request_deadline
from app.responses import answer
from app.schema import GatewaySchema, http_cache
from app.schema.context import Context, Path
from app.schema.http_cache import Freshness
from app.schema.loaders import Loaders
from app.schema.scopes import ReadRecordings
from app.settings import Settings


class GatewayGraphQL(GraphQL[Context, None]):
    """Serves queries on GET and POST at ``/graphql`` (the gate serves GraphiQL's page:
    ``app.explorer``, never Strawberry's, which loads its files from a public CDN), and
    subscriptions over WebSocket there too (see the module docstring)."""

    def __init__(
        self,
        schema: GatewaySchema,
        *,
        init_timeout: float = 10.0,
        max_subscriptions: int = 20,
        origins: tuple[str, ...] = (),
    ) -> None:
        super().__init__(
            schema,
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=timedelta(seconds=init_timeout),
            max_subscriptions_per_connection=max_subscriptions,
            allowed_origins=origins,
        )

    @classmethod
    def from_settings(cls, schema: GatewaySchema, settings: Settings) -> GatewayGraphQL:
        return cls(
            schema,
            init_timeout=settings.ws_init_timeout,
            max_subscriptions=settings.ws_max_subscriptions,
            origins=settings.cors_origins,
        )

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
                response = await self.execute_http(request, request.state.operation)
        except RequestRefusedError as exc:
            response = refusal(exc)
        finally:
            # graphql-core's execution context, a cycle, keeps the context: empty it now
            # (Context.close), so the request's objects go by reference counting.
            if request.context is not None:
                request.context.close()
        if 400 <= response.status_code < 500:
            scope["state"][OUTCOME] = REFUSED
        await answer.keep(request, response, freshness)  # the response cache (app.responses)
        await http_cache.apply(request, response, freshness)(scope, receive, send)

    async def execute_http(self, request: Request, operation: GraphQLRequestData) -> Response:
        """Run ``operation`` for ``request``; its JSON answer, with what the resolvers set on
        the context's response (a status, headers: the budget's 429 and ``Retry-After``).
        BadRequestError when the document names no operation to run, or one its method may
        not run (a mutation over GET)."""
        resolvers_response = Response()
        del resolvers_response.headers["content-length"]
        context = await self.get_context(request, resolvers_response)
        try:
            result = await self.schema.execute(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                operation_name=operation.operation_name,
                # Subscriptions too, as Strawberry's view allows them: OperationTransport
                # refuses them over HTTP with a message that says where they are served.
                allowed_operation_types=OperationType.from_http(
                    "GET" if request.method == "GET" else "POST"  # the gate lets no other in
                ),
                operation_extensions=operation.extensions,
            )
        except CannotGetOperationTypeError as exc:
            raise BadRequestError(exc.as_http_error_reason()) from None
        except InvalidOperationTypeError as exc:
            raise BadRequestError(exc.as_http_error_reason(request.method)) from None
        body = self.encode_json(await self.process_result(request, result))
        response = Response(
            body, status_code=resolvers_response.status_code, media_type="application/json"
        )
        response.headers.raw.extend(resolvers_response.headers.raw)
        return response

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
        if isinstance(request, WebSocket):
            # Nobody is known yet: on_ws_connect fills this in once connection_init names the
            # caller (Strawberry keeps this very object for the connection). Until then it
            # holds the socket only, and reading anything else from it fails.
            pending = Context.__new__(Context)
            pending.request = request
            return pending
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

    async def on_ws_connect(self, context: Context) -> UnsetType:
        """Authenticates ``connection_init`` (4403 when refused) and fills in the context."""
        websocket = context.request
        assert isinstance(websocket, WebSocket)
        params = context.connection_params or {}
        access: Authenticator = websocket.state.access
        try:
            principal = await access.authenticate(_authorization(params, websocket))
        except UnauthenticatedError:
            raise ConnectionRejectionError() from None
        if ReadRecordings.scope not in principal.scopes:
            raise ConnectionRejectionError()
        freshness = Freshness()
        authenticated = Context(
            request=websocket,
            response=Response(),  # nothing sends it: there is no HTTP answer on a socket
            settings=websocket.state.settings,
            tenant=principal.tenant,
            scopes=principal.scopes,
            loaders=Loaders.for_connection(principal.tenant.recordings),
            signer=websocket.state.signer,
            media=websocket.state.media,
            limiter=websocket.state.limiter,
            events=websocket.state.events,
            freshness=freshness,
            connection_params=params,
        )
        vars(context).update(vars(authenticated))
        unset: UnsetType = UNSET  # a plain connection_ack, with no payload
        return unset


def _authorization(params: dict[str, Any], websocket: WebSocket) -> str | None:
    """The ``Authorization`` value of a ``connection_init`` payload, at its top level or
    under ``headers`` (names in any case), else the handshake's header; a value that is not
    a string is refused as it stands (UNAUTHENTICATED)."""
    headers = params.get("headers")
    for source in (params, headers if isinstance(headers, dict) else {}):
        for name, value in source.items():
            if isinstance(name, str) and name.lower() == "authorization":
                return value if isinstance(value, str) else ""
    return websocket.headers.get("authorization")


class _Request(Request):
    """The request ``GatewayGraphQL.__call__`` hands to Strawberry, which brings back the
    context built for it (not in ``request.state``: that may be shared by requests)."""

    context: Context | None = None
