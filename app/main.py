"""The ASGI application: ``create_app(settings)``.

A request flows: Starlette route -> ``GraphQLGate`` (who is calling, is the body a GraphQL
request: ``app.access``) -> ``GatewayGraphQL`` (fresh ``Context`` for the caller's tenant) ->
the schema's limits and budget -> resolvers in ``app.schema`` -> the tenant's
``RecordingService`` -> a provider adapter -> the one shared ``Upstream`` (``app.upstream``)
opened by the lifespan. Media links handed out by the schema come back to ``/media/{token}``
(``app.media.proxy``), which streams the audio.

The services are built once, by the lifespan, and reach every request as ``request.state``
(``GatewayState``): nothing is built per request but the GraphQL context and its loaders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypedDict

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from app import tracing
from app.access.authenticate import Authenticator
from app.access.gate import GraphQLGate
from app.access.ratelimit import RateLimiter
from app.cache import RecordingCache
from app.cors import cors_middleware
from app.errors import ConfigError
from app.events import EventBus, build_bus
from app.explorer.assets import AssetsRoute
from app.explorer.page import GraphiQLPage
from app.export.route import ExportRoute
from app.health import CacheProbe, livez, readyz
from app.media.links import MediaLinks
from app.media.proxy import MediaRoute
from app.metrics import process_exited
from app.metrics.endpoint import metrics
from app.models import Provider
from app.persisted import PersistedQueries
from app.requestid import RequestIdMiddleware
from app.responses import ResponseCache
from app.schema import build_schema
from app.schema.view import GatewayGraphQL
from app.settings import Settings, require_signing_keys
from app.signing import Signer
from app.tenants import Tenants
from app.upstream import build_transport
from app.upstream.client import Upstream
from app.webhooks import WebhookRoute, Webhooks

#: Seconds between the warnings of a gateway serving beyond loopback without client auth.
OPEN_WARNING_INTERVAL = 60.0
logger = logging.getLogger("app.main")


class GatewayState(TypedDict):
    """What the lifespan yields: each request sees it as ``request.state``."""

    settings: Settings
    tenants: Tenants
    access: Authenticator
    limiter: RateLimiter
    media: MediaLinks
    signer: Signer
    persisted: PersistedQueries
    cache_probe: CacheProbe
    responses: ResponseCache | None
    events: EventBus
    webhooks: Webhooks


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sandbox: ASGIApp | None = None,
    open_warning: str | None = None,
    open_warning_interval: float = OPEN_WARNING_INTERVAL,
    graphiql_default: str | None = None,
    cache_clock: Callable[[], float] = time.time,
) -> Starlette:
    """The gateway. ``transport`` replaces the network (tests); ``sandbox`` is mounted
    at ``/sandbox`` (demo mode); ``open_warning`` is logged at start and every
    ``open_warning_interval`` seconds (serving beyond loopback without client auth);
    ``graphiql_default`` is the document GraphiQL shows on a first visit (the demo's);
    ``cache_clock`` is the wall clock the recording cache reads (tests move it past TTLs).
    Refuses to build without a signing key, or with several tenants and no way to tell
    callers apart (ConfigError)."""
    signer = Signer(require_signing_keys(settings))
    if not settings.client_auth and len(settings.tenant_settings()) > 1:
        raise ConfigError(
            "several tenants and no client auth: give each tenant api_keys, or set up [auth.jwt]"
        )
    tracing.configure_from_environment()  # OTEL_*: before the schema, which adds its span
    schema = build_schema(settings.limits)
    manifest = PersistedQueries.manifest_for(settings)  # read now: ConfigError at start

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[GatewayState]:
        async with contextlib.AsyncExitStack() as closing:  # each closed, whatever the others do
            closing.callback(process_exited)  # at the very end: a worker's live gauges go
            if tracing.enabled():  # last out: the last requests' spans are sent at exit
                closing.push_async_callback(asyncio.to_thread, tracing.flush)
            # A batch fans out to up to GATEWAY_MAX_BATCH concurrent calls (app.upstream).
            upstream = Upstream(
                transport or build_transport(settings), timeout=settings.upstream_timeout
            )
            closing.push_async_callback(upstream.aclose)
            cache = RecordingCache.from_settings(settings.cache, clock=cache_clock)
            closing.push_async_callback(cache.close)
            responses = ResponseCache.from_settings(
                settings.response_cache, settings.cache, clock=cache_clock, outage=cache.outage
            )
            if responses is not None:
                closing.push_async_callback(responses.aclose)
                cache.on_change = responses.purge  # a recording changed: its answers go
            tenants = Tenants.build(settings, upstream, cache)
            access = Authenticator.from_settings(settings, tenants)
            closing.push_async_callback(access.aclose)
            limiter = RateLimiter.from_settings(settings.cache)
            closing.push_async_callback(limiter.aclose)
            persisted = PersistedQueries.build(settings, manifest)
            closing.push_async_callback(persisted.aclose)
            cache_probe = CacheProbe(settings.cache)
            closing.push_async_callback(cache_probe.aclose)
            events = build_bus(settings)  # Redis pub/sub when the cache is Redis
            closing.push_async_callback(events.aclose)
            await events.start()
            webhooks = Webhooks.build(settings, tenants, cache.outage)
            closing.push_async_callback(webhooks.aclose)  # before the bus and upstream close
            if open_warning is not None:
                closing.enter_context(_repeat_warning(open_warning, open_warning_interval))
            yield GatewayState(
                settings=settings,
                tenants=tenants,
                access=access,
                limiter=limiter,
                media=MediaLinks.from_settings(settings, tenants, signer),
                signer=signer,
                persisted=persisted,
                cache_probe=cache_probe,
                responses=responses,
                events=events,
                webhooks=webhooks,
            )

    view = GatewayGraphQL.from_settings(schema, settings)
    ide = None
    if settings.graphiql:
        ide = GraphiQLPage(default_query=graphiql_default, auth=settings.client_auth)
    routes: list[BaseRoute] = [
        Route("/", _home),
        Route("/livez", livez),
        Route("/healthz", livez),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        # Every method reaches the gate, which refuses all but GET and POST in its own shape.
        Route("/graphql", GraphQLGate(view, ide)),
        # Subscriptions: the same view, which authenticates the socket's connection_init.
        WebSocketRoute("/graphql", view),
        Route("/media/{token}", MediaRoute(), methods=["GET", "HEAD"]),
        *(Route(f"/webhooks/{p.value}/{{tenant}}", WebhookRoute(p)) for p in Provider),
        # The recordings listing as one flat file (app.export), authenticated like /graphql.
        Route("/export/recordings.csv", ExportRoute("csv"), methods=["GET"]),
        Route("/export/recordings.ndjson", ExportRoute("ndjson"), methods=["GET"]),
    ]
    if settings.graphiql:
        routes.append(Route("/graphiql/{name}", AssetsRoute(), methods=["GET", "HEAD"]))
    if sandbox is not None:
        routes.append(Mount("/sandbox", app=sandbox))
    # Outermost, the request id: on every answer, CORS preflights and refusals included
    # (app.requestid). Then CORS, outside the routes: preflights answered before the gate
    # and the router (app.cors).
    middleware = [Middleware(RequestIdMiddleware), *cors_middleware(settings)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)


@contextlib.contextmanager
def _repeat_warning(message: str, interval: float) -> Iterator[None]:
    """Log ``message`` now and every ``interval`` seconds until the app stops."""

    async def repeat() -> None:
        while True:
            logger.warning(message)
            await asyncio.sleep(interval)

    task = asyncio.get_running_loop().create_task(repeat())
    try:
        yield
    finally:
        task.cancel()


async def _home(request: Request) -> Response:
    return RedirectResponse(
        str(request.url.replace(path=request.scope.get("root_path", "") + "/graphql"))
    )
