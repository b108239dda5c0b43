"""The front door of ``/graphql``: who is calling, and whether the body is a GraphQL request.

Everything here happens before GraphQL parses anything, and costs no upstream request:

1. **Credentials** (``Authenticator``): missing or not accepted is 401 with
   ``WWW-Authenticate: Bearer``. The GraphiQL page (a ``GET`` for HTML, with no query:
   ``app.explorer``) needs none: it holds no data, and a browser cannot send a header when
   it opens it. With GraphiQL turned off (``GATEWAY_GRAPHIQL=0``) that request is 404.
2. **Size**: a body over ``GATEWAY_MAX_BODY_BYTES`` is 413, from its ``Content-Length`` when it
   has one, else as soon as the bytes read pass the limit (never buffered whole).
3. **Shape**: a POST body must be a JSON object (UTF-8), with a ``query`` string,
   ``operationName`` a string or null and ``variables`` and ``extensions`` objects or null; a
   GET's parameters likewise. Anything else is 400 BAD_REQUEST,
   in the same ``{"errors": [...]}`` shape as every GraphQL error, never a 500.
4. **Persisted queries** (``app.persisted``): a hash in ``extensions.persistedQuery`` may
   stand for the ``query``, which is then the document of the request the view runs; or the
   request is refused (not found, not allowed, a hash that is not its query's).
   Only a request with neither a query nor that extension is "no ``query``".
5. **Response cache** (``app.responses``): a query whose answer is kept is answered here,
   from its bytes, with nothing parsed or executed (still charged to the rate limit).

The request then goes on to the GraphQL view with what was checked in
``request.state.operation`` (``OPERATION``: the view neither reads nor parses the body again)
and the caller (a ``Principal``) in ``request.state.principal``. The tenant also names the request
in log lines (``app.logs``).

Every GraphQL request (not the GraphiQL page) is timed and counted here, once, by operation
name and outcome (``app.metrics.graphql``): the front door sees refusals and answers alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from app.access.authenticate import Authenticator
from app.errors import (
    BadRequestError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RequestRefusedError,
    UnauthenticatedError,
)
from app.logs import acting_for
from app.metrics.graphql import (
    ANONYMOUS,
    ERROR,
    OK,
    OUTCOME,
    REFUSED,
    OperationLabels,
    observe,
)
from app.persisted import PersistedQueries
from app.responses import answer

#: Where the gate leaves the checked request (a ``GraphQLRequestData``, the persisted query's
#: document put in) in ``request.state``: the view runs it as it stands.
OPERATION = "operation"

#: A body's members and the JSON types each may have (None is always allowed).
_MEMBERS: Mapping[str, type] = {
    "query": str,
    "operationName": str,
    "variables": dict,
    "extensions": dict,
}


class GraphQLGate:
    """ASGI middleware in front of the GraphQL view (see the module docstring); ``ide`` is
    the GraphiQL page, None when it is turned off."""

    def __init__(self, view: GraphQL[Any, Any], ide: ASGIApp | None = None) -> None:
        self.app = view
        self.ide = ide
        self.operation_label = OperationLabels()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = Headers(scope=scope)
        # The request's own copy of the lifespan's state, as uvicorn makes it: a server that
        # hands every request the same dict (a test's ASGI transport) must not let
        # concurrent requests see each other's principal, freshness or cache key.
        state: dict[str, Any] = {**scope.get("state", {})}
        scope["state"] = state
        operation = ANONYMOUS
        try:
            if scope["method"] not in ("GET", "POST"):
                raise MethodNotAllowedError(f"{scope['method']} is not served: use GET or POST")
            if _wants_ide(scope, headers):
                page = self.ide or PlainTextResponse("Not Found", status_code=404)
                await page(scope, receive, send)
                return
            authenticator: Authenticator = state["access"]
            principal = await authenticator.authenticate(headers.get("authorization"))
            state["principal"] = principal
            persisted: PersistedQueries = state["persisted"]
            if scope["method"] == "POST":
                body = await _read_body(receive, headers, state["settings"].limits.max_body_bytes)
                data = _check_body(body, headers)
            else:
                data = _check_parameters(QueryParams(scope.get("query_string", b"")))
            operation = self.operation_label(data.get("operationName"))
            query = _required(await persisted.resolve(data, principal.tenant.name))
            state[OPERATION] = GraphQLRequestData(
                query=query,
                variables=data.get("variables"),
                operation_name=data.get("operationName"),
                extensions=data.get("extensions"),
            )
            with acting_for(principal.tenant.name):  # its access line names the tenant
                if await answer.lookup(scope, receive, send, principal, query, data):
                    observe(operation, OK, started)
                    return
        except RequestRefusedError as exc:
            await refusal(exc)(scope, receive, send)
            observe(operation, REFUSED, started)
            return
        try:
            with acting_for(principal.tenant.name):
                await self.app(scope, receive, send)
        finally:
            observe(operation, state.get(OUTCOME, ERROR), started)


def refusal(exc: RequestRefusedError) -> JSONResponse:
    """The HTTP response for a request refused before GraphQL."""
    headers = {"cache-control": "no-store"}
    if isinstance(exc, UnauthenticatedError):
        headers["www-authenticate"] = 'Bearer realm="recording-gateway"'
    if isinstance(exc, MethodNotAllowedError):
        headers["allow"] = "GET, POST"
    body = {"errors": [{"message": exc.message, "extensions": {"code": exc.code}}]}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def _wants_ide(scope: Scope, headers: Headers) -> bool:
    """Strawberry's own test for serving GraphiQL instead of running a query (a GET for
    HTML, or for anything, with no ``query``)."""
    if scope["method"] != "GET":
        return False
    params = QueryParams(scope.get("query_string", b""))
    if "query" in params or "extensions" in params:  # a query, or a persisted query's hash
        return False
    accept = headers.get("accept", "")
    return "text/html" in accept or "*/*" in accept


async def _read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    declared = headers.get("content-length", "")
    too_large = PayloadTooLargeError(f"the body is larger than the limit of {limit} bytes")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise BadRequestError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _check_body(body: bytes, headers: Headers) -> dict[str, Any]:
    if "application/json" not in headers.get("content-type", ""):
        raise BadRequestError("send the request as JSON, with Content-Type: application/json")
    try:
        data = json.loads(body)  # bytes: invalid UTF-8 is a ValueError too
    except ValueError:
        raise BadRequestError("the body is not valid JSON (UTF-8)") from None
    if isinstance(data, list):
        raise BadRequestError("batched requests (a JSON array) are not accepted: send one object")
    if not isinstance(data, dict):
        raise BadRequestError("the body must be a JSON object with a `query`")
    _check_members(data)
    return data


def _check_parameters(params: QueryParams) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in ("query", "operationName"):
        if name in params:
            data[name] = params[name]
    for name in ("variables", "extensions"):
        if name in params:
            try:
                data[name] = json.loads(params[name])
            except ValueError:
                raise BadRequestError(f"`{name}` is not valid JSON") from None
    _check_members(data)
    return data


def _check_members(data: Mapping[str, Any]) -> None:
    for name, kind in _MEMBERS.items():
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            what = "a string" if kind is str else "an object"
            raise BadRequestError(f"`{name}` must be {what} or null")


def _required(query: str | None) -> str:
    """The query to run, once persisted queries had their say; BAD_REQUEST if none."""
    if query is None or not query.strip():
        raise BadRequestError("the request has no `query`")
    return query
