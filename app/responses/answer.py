"""The two ends of the response cache on the request path.

- ``lookup`` (the gate, once the caller is authenticated and the body checked and its
  persisted query resolved): a kept answer is sent from its bytes, without parsing,
  validating or executing anything. It is still charged to the tenant's rate limit at the
  cost the request was estimated at when it ran (``app.schema.budget``); if the budget
  refuses, the request goes on as a miss, so the refusal (429, ``Retry-After``) is the one
  the schema gives. Its ``Cache-Control``/``ETag`` (and a 304) are worked out by
  ``app.schema.http_cache`` as for a miss: ``max-age`` from the entry's remaining
  freshness, so it shrinks as the entry ages, exactly as a miss's would.
- ``keep`` (the view, once an answer is built): it is kept if it can be shared (see
  ``Freshness.shared_until``: no error, no media link, no listing, no stale recording, and
  some recording bounding it) and is a plain 200.

Requests asking for their cost (``X-Gateway-Cost: 1``) bypass the cache: their answer
carries it. Every answer of a request the cache considered says ``X-Cache: HIT`` or ``MISS``.
Only queries are ever kept: a mutation's answer says ``no-store`` (its resolver marks the
request's ``Freshness``, e.g. ``requestTranscription``), and answers with errors are never kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app import tracing
from app.access.authenticate import Principal
from app.access.ratelimit import RateLimiter
from app.cache import RecordingCache
from app.metrics.graphql import OK, OUTCOME
from app.responses.store import ResponseCache, Stored
from app.schema import http_cache
from app.schema.budget import COST_HEADER
from app.schema.http_cache import Freshness

#: ``request.state`` entries: the request's response cache key, and its estimated cost.
KEY = "response_key"
COST = "cost"
HEADER = "x-cache"


async def lookup(
    scope: Scope,
    receive: Receive,
    send: Send,
    principal: Principal,
    query: str,
    request: Mapping[str, Any],
) -> bool:
    """Answer from the response cache if it holds this request's answer (then True); else
    note the request's key for ``keep`` and return False."""
    state: dict[str, Any] = scope["state"]
    state[KEY] = state[COST] = None  # this request's own (a test server may share ``state``)
    responses: ResponseCache | None = state.get("responses")
    if responses is None or _header(scope, COST_HEADER) == "1":
        return False
    service = principal.tenant.recordings
    key = RecordingCache.response_key(
        # The tenant and the accounts it reads (as the recording cache's keys name them):
        # a tenant reconfigured onto other accounts never reads its old answers.
        [service.scope(provider) for provider in service.configured],
        principal.scopes,
        query,
        request.get("operationName"),
        request.get("variables"),
    )
    state[KEY] = key
    stored = await responses.get(key)
    if stored is None:
        return False
    rate = principal.tenant.rate_limit
    if rate is not None and stored.cost > 0:
        limiter: RateLimiter = state["limiter"]
        if not (await limiter.hit(principal.tenant.name, rate, stored.cost)).allowed:
            return False  # run it: the budget then refuses it in its own words
    freshness = Freshness.restored(stored.until, stored.no_store_reason)
    http = Request(scope, receive)
    # Still one operation span per request (app.tracing.operations names a miss's): a hit is
    # a query answered without execution, and says so.
    with tracing.operation_span(http.headers) as span:
        span.rename("graphql.query")
        span.set("graphql.operation.type", "query")
        if isinstance(name := request.get("operationName"), str) and name:
            span.set("graphql.operation.name", name)
        span.set("gateway.tenant", principal.tenant.name)
        span.set("gateway.response_cache", "hit")
        response = Response(stored.body, media_type=stored.content_type)
        response = http_cache.apply(http, response, freshness)
        response.headers[HEADER] = "HIT"
        state[OUTCOME] = OK
        await response(scope, receive, send)
    return True


async def keep(request: Request, response: Response, freshness: Freshness) -> None:
    """Keep ``response`` if the request was looked up and its answer can be shared; say MISS."""
    state: dict[str, Any] = request.scope["state"]
    key: str | None = state.get(KEY)
    responses: ResponseCache | None = state.get("responses")
    if key is None or responses is None:
        return
    response.headers[HEADER] = "MISS"
    until = freshness.shared_until()
    cost = state.get(COST)
    if (
        until is None
        or cost is None
        or state.get(OUTCOME) != OK
        or response.status_code != 200
        or isinstance(response, StreamingResponse)
    ):
        return
    content_type = response.headers.get("content-type", "application/json")
    stored = Stored(bytes(response.body), until, cost, content_type, freshness.no_store_reason)
    await responses.put(key, stored, freshness.tags)


def _header(scope: Scope, name: str) -> str | None:
    wanted = name.encode()
    for header, value in scope.get("headers", ()):
        if header == wanted:
            return bytes(value).decode("latin-1")
    return None
