"""Webhook test helpers: recorded deliveries, deliveries signed on the spot, and a gateway
whose lifespan state (its event bus, its webhook work) the test can reach."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from asgi_lifespan import LifespanManager
from starlette.types import ASGIApp, Receive, Scope, Send

from app.events import EventBus
from app.main import create_app
from app.sandbox import SandboxConfig
from app.settings import Settings
from app.webhooks import Webhooks
from tests.support import sandbox_env

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
GATEWAY = "http://gateway.test"
#: The keys the recorded SignalWire and Bird deliveries are signed with (Twilio's: the
#: sandbox's demo auth token, its default webhook key).
SIGNALWIRE_KEY = "PSK_fixture_signalwire_signing_key"
BIRD_KEY = "fixture-bird-signing-key"
#: The timestamp of the recorded Bird deliveries.
BIRD_RECORDED_AT = 1732700000
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Delivery:
    """A POST as a provider sends it."""

    url: str
    headers: Mapping[str, str]
    body: bytes
    key: str = ""

    @property
    def path(self) -> str:
        return httpx.URL(self.url).raw_path.decode()


def recorded(provider: str, name: str) -> Delivery:
    """``tests/fixtures/<provider>/webhooks/<name>.json``."""
    data = json.loads((FIXTURES / provider / "webhooks" / f"{name}.json").read_text())
    return Delivery(data["url"], data["headers"], data["body"].encode(), data["key"])


def laml_signed(
    url: str, params: Sequence[tuple[str, str]], key: str, header: str = "X-Twilio-Signature"
) -> Delivery:
    """A Twilio-style form POST, signed as the providers' documentation says (written here
    again, apart from ``app.webhooks.signatures``)."""
    signed = url + "".join(name + value for name, value in sorted(params))
    signature = base64.b64encode(hmac.new(key.encode(), signed.encode(), "sha1").digest())
    headers = {"content-type": FORM, header: signature.decode()}
    return Delivery(url, headers, urlencode(params).encode(), key)


def bird_signed(url: str, event: Mapping[str, Any] | bytes, key: str, timestamp: int) -> Delivery:
    """A Bird JSON event (or any body), signed as Bird's documentation says."""
    body = event if isinstance(event, bytes) else json.dumps(event).encode()
    signed = f"{timestamp}\n{url}\n".encode() + hashlib.sha256(body).digest()
    signature = base64.b64encode(hmac.new(key.encode(), signed, "sha256").digest()).decode()
    headers = {
        "content-type": "application/json",
        "MessageBird-Signature": signature,
        "MessageBird-Request-Timestamp": str(timestamp),
    }
    return Delivery(url, headers, body, key)


def webhook_env(config: SandboxConfig, base_url: str) -> dict[str, str]:
    """The sandbox's environment with a signing key for every provider (Twilio's: its auth
    token, by default)."""
    return sandbox_env(config, base_url) | {
        "SIGNALWIRE_SIGNING_KEY": SIGNALWIRE_KEY,
        "BIRD_WEBHOOK_SIGNING_KEY": BIRD_KEY,
    }


class StateCapture:
    """An ASGI app in front of another that keeps its lifespan state (``state``) and the
    event loop it runs on (``loop``: a server in another thread is reached through it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            self.state = scope.setdefault("state", {})
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@dataclass
class Gateway:
    """A running gateway: a client, and its lifespan state."""

    client: httpx.AsyncClient
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def webhooks(self) -> Webhooks:
        webhooks: Webhooks = self.state["webhooks"]
        return webhooks

    @property
    def events(self) -> EventBus:
        events: EventBus = self.state["events"]
        return events

    async def deliver(self, delivery: Delivery) -> httpx.Response:
        return await self.client.post(
            delivery.path, content=delivery.body, headers=delivery.headers
        )


@contextlib.asynccontextmanager
async def running(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> AsyncIterator[Gateway]:
    """``create_app(settings)`` with its lifespan running, reached in process."""
    capture = StateCapture(create_app(settings, transport=transport))
    async with LifespanManager(capture) as manager:
        asgi = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=asgi, base_url=GATEWAY) as client:
            yield Gateway(client, capture.state)
