"""`create_sandbox_app`: Twilio, SignalWire, Bird and Bird's S3 bucket as one Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.bird import BirdApi
from app.sandbox.compat import CompatApi
from app.sandbox.config import DEMO, SandboxConfig
from app.sandbox.lifecycle import LifecycleMiddleware
from app.sandbox.middleware import SandboxMiddleware
from app.sandbox.s3 import Presigner, S3Bucket
from app.sandbox.signalwire import SignalWireDialect
from app.sandbox.state import Sandbox
from app.sandbox.transcription_api import BirdTranscriptions, CompatTranscriptions
from app.sandbox.twilio import TwilioDialect
from app.sandbox.web import route_path

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_sandbox_app(config: SandboxConfig = DEMO) -> Starlette:
    """A fresh sandbox (its own dataset, log and faults) at `app.state.sandbox`; served with
    its lifespan, its recordings' clock ticks every `config.lifecycle_interval` seconds."""
    sandbox = Sandbox(config)
    presigner = Presigner(sandbox)
    twilio = CompatApi(sandbox, TwilioDialect())
    signalwire = CompatApi(sandbox, SignalWireDialect())
    bird = BirdApi(sandbox, presigner)
    routes: list[BaseRoute] = [
        *twilio.routes(),
        *signalwire.routes(),
        *bird.routes(),
        *S3Bucket(sandbox, presigner).routes(),
        *CompatTranscriptions(twilio).routes(),
        *CompatTranscriptions(signalwire).routes(),
        *BirdTranscriptions(bird).routes(),
    ]
    served = [describe(route) for route in routes]
    routes.append(sandbox.chaos.route())
    routes.append(Route("/{rest:path}", UnknownRoute(served).respond, methods=ALL_METHODS))
    middleware = [
        Middleware(LifecycleMiddleware, lifecycle=sandbox.lifecycle),
        Middleware(SandboxMiddleware, sandbox=sandbox),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.sandbox = sandbox
    return app


def describe(route: BaseRoute) -> str:
    """`GET|DELETE /path/{param}` for the unknown-route message."""
    assert isinstance(route, Route)
    methods = sorted((route.methods or set()) - {"HEAD"})
    return f"{'|'.join(methods)} {route.path}"


class UnknownRoute:
    """Fakes fail loudly: a request no route serves gets a 404 saying what arrived."""

    def __init__(self, served: list[str]) -> None:
        self.served = served

    async def respond(self, request: Request) -> Response:
        path = route_path(request.scope)
        query = request.url.query
        shown = f"{path}?{query}" if query else path
        body = {
            "code": "SandboxRouteNotFound",
            "message": f"The sandbox serves no route for {request.method} {shown}",
            "received": {"method": request.method, "path": path, "query": query},
            "routes": self.served,
        }
        return JSONResponse(body, status_code=404)
