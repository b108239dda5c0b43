"""The ASGI application: ``create_app(settings)``.

A request flows: Starlette route -> ``GatewayGraphQL`` (fresh ``Context``) ->
resolvers in ``app.schema`` -> ``RecordingService`` -> a provider adapter ->
the one shared ``Upstream`` (``app.upstream``) opened by the lifespan. Media links handed out
by the schema come back to ``/media/{token}`` (``app.media.proxy``), which streams the audio.

The services are built once, by the lifespan, and reach every request as ``request.state``
(``GatewayState``): nothing is built per request but the GraphQL context and its loaders.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypedDict

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp

from app.cache import RecordingCache
from app.media.links import MediaLinks
from app.media.proxy import media_endpoint
from app.providers import build_providers
from app.recordings import RecordingService
from app.schema.view import GatewayGraphQL
from app.settings import Settings, require_signing_keys
from app.signing import Signer
from app.upstream import build_transport
from app.upstream.client import Upstream


class GatewayState(TypedDict):
    """What the lifespan yields: each request sees it as ``request.state``."""

    settings: Settings
    recordings: RecordingService
    media: MediaLinks
    signer: Signer


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    sandbox: ASGIApp | None = None,
) -> Starlette:
    """The gateway. ``transport`` replaces the network (tests); ``sandbox`` is mounted
    at ``/sandbox`` (demo mode). Refuses to build without a signing key (ConfigError)."""
    signer = Signer(require_signing_keys(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[GatewayState]:
        async with contextlib.AsyncExitStack() as closing:  # each closed, whatever the others do
            # A batch fans out to up to GATEWAY_MAX_BATCH concurrent calls (app.upstream).
            upstream = Upstream(
                transport or build_transport(settings), timeout=settings.upstream_timeout
            )
            closing.push_async_callback(upstream.aclose)
            cache = RecordingCache.from_settings(settings.cache)
            closing.push_async_callback(cache.close)
            service = RecordingService(build_providers(settings, upstream), cache)
            yield GatewayState(
                settings=settings,
                recordings=service,
                media=MediaLinks.from_settings(settings, service, signer),
                signer=signer,
            )

    routes: list[BaseRoute] = [
        Route("/", _home),
        Route("/healthz", _health),
        Route("/graphql", GatewayGraphQL(), methods=["GET", "POST"]),
        Route("/media/{token}", media_endpoint, methods=["GET", "HEAD"]),
    ]
    if sandbox is not None:
        routes.append(Mount("/sandbox", app=sandbox))
    return Starlette(routes=routes, lifespan=lifespan)


async def _home(request: Request) -> Response:
    return RedirectResponse(
        str(request.url.replace(path=request.scope.get("root_path", "") + "/graphql"))
    )


async def _health(request: Request) -> Response:
    recordings: RecordingService = request.state.recordings
    providers = [p.name for p in recordings.configured]
    return JSONResponse({"status": "ok", "providers": providers})
