"""The request log, the artificial latency and fault injection, as one ASGI middleware."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.sandbox.web import provider_of, route_path

if TYPE_CHECKING:
    from app.sandbox.state import Sandbox

#: How many requests the log keeps (the oldest are dropped beyond that).
REQUEST_LOG_LIMIT = 10_000


@dataclass(frozen=True, slots=True)
class SeenRequest:
    """One request the sandbox received. `headers` has lower-case names (repeats joined by ", ").

    `path` is the path as received (with any mount prefix); `route_path` is below the prefix.
    The repr hides the Authorization value.
    """

    method: str
    url: str
    path: str
    route_path: str
    query: str
    headers: dict[str, str]
    provider: str | None

    @classmethod
    def from_scope(cls, scope: Scope) -> SeenRequest:
        request = Request(scope)
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        inner = route_path(scope)
        return cls(
            method=request.method,
            url=str(request.url),
            path=scope["path"],
            route_path=inner,
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            provider=provider_of(inner),
        )

    def __repr__(self) -> str:
        shown = {k: ("<redacted>" if k == "authorization" else v) for k, v in self.headers.items()}
        return f"SeenRequest(method={self.method!r}, url={self.url!r}, headers={shown!r})"


class SandboxMiddleware:
    """Logs every request, sleeps `config.latency`, then answers an injected fault if one is due."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seen = SeenRequest.from_scope(scope)
        log = self.sandbox.requests
        log.append(seen)
        if len(log) > REQUEST_LOG_LIMIT:  # demo mode runs for days: keep the newest only
            del log[: len(log) - REQUEST_LOG_LIMIT]
        if self.sandbox.config.latency > 0:
            await anyio.sleep(self.sandbox.config.latency)
        # An injected fault comes first; else, maybe, a random one (`app.sandbox.chaos`).
        fault = self.sandbox.faults.take(seen.provider) or self.sandbox.chaos.draw(seen.provider)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.reached:
            await self.app(scope, receive, _dropped)  # the provider acts; its answer is lost
        await send(
            {"type": "http.response.start", "status": fault.status, "headers": fault.headers()}
        )
        chunks = list(fault.chunks()) or [b""]
        for index, chunk in enumerate(chunks):
            more = index < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def _dropped(message: Message) -> None:
    """A ``send`` that loses every message: the answer of a request a fault stands in for."""
