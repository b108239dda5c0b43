"""Deadlines over real sockets: a provider trickling its answer is cut at the call's deadline
(``GATEWAY_UPSTREAM_TIMEOUT``, start to last byte, not per read), and a GraphQL request ends
at its own (``GATEWAY_REQUEST_TIMEOUT``) with what answered by then."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest

from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from tests.servers import raw_server, serve
from tests.support import gateway_client, graphql, sandbox_env
from tests.upstream.support import transport

pytestmark = pytest.mark.anyio

SW_ID = "3b1b6ee5-5b36-4d0d-9c6e-0123456789ab"
#: The server's pace: one byte per this many seconds (far below any per-read timeout).
PACE = 0.05


def trickle(data: bytes, connection: socket.socket, over: threading.Event) -> None:
    for byte in data:
        connection.sendall(bytes([byte]))
        if over.wait(PACE):
            return


def trickling_head(connection: socket.socket, over: threading.Event) -> None:
    trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" * 50, connection, over)


def trickling_body(connection: socket.socket, over: threading.Event) -> None:
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    connection.sendall(b"Content-Length: 2000\r\n\r\n")
    trickle(b"{" + b" " * 1998 + b"}", connection, over)


def hanging(connection: socket.socket, over: threading.Event) -> None:
    over.wait(30)


async def signalwire_query(base_url: str, kind: str, **env: str) -> tuple[dict[str, Any], float]:
    settings = Settings.from_env({**sandbox_env(DEMO, base_url), **env})
    async with gateway_client(settings, transport(kind)) as client:
        started = time.monotonic()
        query = "query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { id } }"
        body = await graphql(client, query, {"id": SW_ID})
        return body, time.monotonic() - started


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
@pytest.mark.parametrize("handler", [trickling_head, trickling_body], ids=["head", "body"])
async def test_a_trickling_provider_is_cut_at_the_calls_deadline(kind: str, handler: Any) -> None:
    with raw_server(handler) as server:
        body, elapsed = await signalwire_query(server.url, kind, GATEWAY_UPSTREAM_TIMEOUT="0.5")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire did not answer within 0.5 s"
    assert 0.5 <= elapsed < 1.5


async def test_the_request_deadline_returns_what_answered() -> None:
    sandbox_app = create_sandbox_app(DEMO)
    rid = sandbox_app.state.sandbox.sample_ids()["twilio"]
    with serve(sandbox_app) as url, raw_server(hanging) as stuck:
        env = {
            **sandbox_env(DEMO, url),
            "SIGNALWIRE_SPACE_URL": stuck.url,
            "GATEWAY_UPSTREAM_TIMEOUT": "5",
            "GATEWAY_REQUEST_TIMEOUT": "1",
        }
        async with gateway_client(Settings.from_env(env), transport("aiohttp")) as client:
            # Cached first, so that on a loaded machine the healthy field is still well inside
            # the deadline: what is measured is the hung one.
            warm = "query($id: ID!) { recording(provider: TWILIO, id: $id) { id } }"
            assert "errors" not in await graphql(client, warm, {"id": rid})
            started = time.monotonic()
            body = await graphql(
                client,
                "query($tw: ID!, $sw: ID!) { a: recording(provider: TWILIO, id: $tw) { id } "
                "b: recording(provider: SIGNALWIRE, id: $sw) { id } }",
                {"tw": rid, "sw": SW_ID},
            )
            elapsed = time.monotonic() - started
    assert body["data"] == {"a": {"id": rid}, "b": None}
    (error,) = body["errors"]
    assert error["path"] == ["b"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "the request's deadline (1 s) passed before SignalWire answered"
    assert 1 <= elapsed < 2
