"""Subscribing over a real WebSocket: a ``graphql-transport-ws`` client, events to publish,
and the gateway with a test-only way to publish (the webhook receivers' stand-in).

The publishing hook is a route added to the app a test builds (``/test/publish``), never part
of the gateway: it takes an event in the Redis bus's JSON codec and hands it to the app's own
bus (``request.state.events``). A subscription's registration is read off ``/metrics``
(``gateway_subscriptions_active``): a client's ``subscribe`` message is answered by nothing
until an event comes, so that is how a test knows the server holds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect

from app.events import EventBus, RecordingEvent, RecordingEventType, codec
from app.main import create_app
from app.models import MediaFormat, Provider, Recording, RecordingStatus
from app.settings import Settings
from tests.servers import serve

PROTOCOL = "graphql-transport-ws"
#: Seconds any single wait on the socket may take before the test fails.
WAIT = 10.0

EVENTS = """
subscription Events($filter: RecordingEventFilter) {
  recordingEvents(filter: $filter) {
    type at missed
    recording { provider id callId status durationSeconds }
  }
}
"""


def recording_event(
    tenant: str,
    rid: str,
    *,
    kind: RecordingEventType = RecordingEventType.COMPLETED,
    provider: Provider = Provider.TWILIO,
    call_id: str | None = None,
    duration: int | None = 7,
) -> RecordingEvent:
    recording = Recording(
        provider,
        rid,
        RecordingStatus.COMPLETED,
        provider_status="completed",
        call_id=call_id,
        duration_seconds=duration,
        media_formats=(MediaFormat.MP3, MediaFormat.WAV),
    )
    return RecordingEvent(tenant, kind, recording, datetime.now(UTC))


async def _publish(request: Request) -> Response:
    """Publishes each event of the body (one codec message a line), in a row: nothing runs
    in between, so a subscriber's queue sees them all before its socket sends any."""
    bus: EventBus = request.state.events
    for line in (await request.body()).splitlines():
        await bus.publish(codec.decode(line).event)
    return Response(status_code=204)


def with_publisher(app: Starlette) -> Starlette:
    """``app`` with the test-only ``POST /test/publish`` (see the module docstring)."""
    app.router.routes.append(Route("/test/publish", _publish, methods=["POST"]))
    return app


@contextlib.contextmanager
def running_gateway(settings: Settings) -> Iterator[str]:
    """The gateway under uvicorn on a loopback port, with the publishing hook; its URL."""
    with serve(with_publisher(create_app(settings))) as url:
        yield url


async def publish(client: httpx.AsyncClient, *events: RecordingEvent) -> None:
    body = b"\n".join(codec.encode("test", event) for event in events)
    response = await client.post("/test/publish", content=body)
    assert response.status_code == 204, response.text


def ws_url(url: str) -> str:
    return url.replace("http://", "ws://", 1) + "/graphql"


@contextlib.asynccontextmanager
async def socket(url: str, **options: Any) -> AsyncIterator[ClientConnection]:
    """A WebSocket to ``url``'s /graphql speaking graphql-transport-ws."""
    async with connect(ws_url(url), subprotocols=[PROTOCOL], **options) as ws:  # type: ignore[list-item]
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message, decoded (a failure after ``WAIT`` seconds)."""
    async with asyncio.timeout(WAIT):
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def init(ws: ClientConnection, payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """Send ``connection_init`` with ``payload``; the answer (``connection_ack``, or the
    close raises ``ConnectionClosed``)."""
    message: dict[str, Any] = {"type": "connection_init"}
    if payload is not None:
        message["payload"] = payload
    await ws.send(json.dumps(message))
    return await receive(ws)


async def subscribe(
    ws: ClientConnection,
    op: str,
    query: str = EVENTS,
    variables: Mapping[str, Any] | None = None,
) -> None:
    payload: dict[str, Any] = {"query": query}
    if variables is not None:
        payload["variables"] = variables
    await ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))


def active(metrics_text: str, tenant: str) -> float:
    """``gateway_subscriptions_active`` for ``tenant`` in a scrape (0 when absent)."""
    pattern = rf'^gateway_subscriptions_active\{{tenant="{re.escape(tenant)}"\}} (\S+)$'
    found = re.search(pattern, metrics_text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def until_active(
    client: httpx.AsyncClient, tenant: str, count: float, timeout: float = WAIT
) -> None:
    """Scrape ``/metrics`` until ``tenant`` has ``count`` subscriptions open: each scrape
    is the wait (no sleeping)."""
    deadline = time.monotonic() + timeout
    seen = -1.0
    while time.monotonic() < deadline:
        seen = active((await client.get("/metrics")).text, tenant)
        if seen == count:
            return
    raise AssertionError(f"{tenant} has {seen} subscriptions open, not {count}")
