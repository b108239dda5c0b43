"""A gateway whose tenants may (``admin``) or may not (``reader``) delete, over the sandbox,
with the app's lifespan state in reach (its event bus)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from app.access.keys import new_key
from app.events import EventBus
from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox
from app.sandbox.middleware import SeenRequest
from app.settings import Settings
from tests.access.support import TenantSpec, bearer

ADMIN, READER = new_key(), new_key()
DELETER_SCOPES = ["recordings:read", "media:read", "recordings:delete"]
TENANTS = {
    "admin": TenantSpec(ADMIN, scopes=DELETER_SCOPES),
    "reader": TenantSpec(READER),  # the default scopes: no recordings:delete
}
#: The sandbox's name for each provider.
WIRE = {Provider.TWILIO: "twilio", Provider.SIGNALWIRE: "signalwire", Provider.BIRD: "bird"}

DELETE = """
mutation Delete($provider: Provider!, $id: ID!) {
  deleteRecording(provider: $provider, id: $id) { provider id deleted alreadyDeleted }
}
"""
ONE = """
query One($provider: Provider!, $id: ID!) { recording(provider: $provider, id: $id) { id status } }
"""


class StateSpy:
    """Passes every request on, keeping the lifespan's state it carries (the app's services)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.state = scope["state"]
        await self.app(scope, receive, send)


@dataclass
class Stand:
    client: httpx.AsyncClient
    spy: StateSpy

    async def events(self) -> EventBus:
        """The gateway's event bus (one request first, to see the lifespan's state)."""
        await self.client.get("/livez")
        bus: EventBus = self.spy.state["events"]
        return bus

    async def delete(
        self,
        provider: Provider,
        rid: str,
        *,
        key: str = ADMIN,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        variables = {"provider": provider.name, "id": rid}
        return await self.client.post(
            "/graphql",
            json={"query": DELETE, "variables": variables},
            headers=bearer(key) | dict(headers or {}),
        )

    async def read(self, provider: Provider, rid: str, *, key: str = ADMIN) -> httpx.Response:
        """``recording(...)`` over GET: an answer the response cache may keep."""
        params = {"query": ONE, "variables": f'{{"provider": "{provider.name}", "id": "{rid}"}}'}
        return await self.client.get("/graphql", params=params, headers=bearer(key))


@contextlib.asynccontextmanager
async def stand(settings: Settings, sandbox_app: Starlette) -> AsyncIterator[Stand]:
    """The gateway of ``settings`` over the sandbox app, its lifespan running."""
    app = create_app(settings, transport=httpx.ASGITransport(app=sandbox_app))
    spy = StateSpy(app)
    async with LifespanManager(spy) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Stand(client, spy)


def deletes(sandbox: Sandbox) -> list[SeenRequest]:
    """The DELETE requests the sandbox received."""
    return [seen for seen in sandbox.requests if seen.method == "DELETE"]
