"""The sandbox's wire front (``app.sandbox.wire``): relays, and plays each wire fault on a
real socket, read here byte for byte (no HTTP client between the test and the wire)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette

from app.sandbox import DEMO, Sandbox
from app.sandbox.wire import WireFront
from tests.servers import serve

pytestmark = pytest.mark.anyio

#: A Twilio path without credentials: a small answer (401) of Twilio's own.
TWILIO = f"/2010-04-01/Accounts/{DEMO.twilio_account_sid}/Recordings.json"
BIRD = f"/workspaces/{DEMO.bird_workspace_id}/recordings"


@pytest.fixture
async def front(app: Starlette) -> AsyncIterator[WireFront]:
    sandbox: Sandbox = app.state.sandbox
    with serve(app) as backend:
        host, port = backend.removeprefix("http://").split(":")
        async with WireFront(sandbox.faults, (host, int(port))) as running:
            yield running


async def exchange(front: WireFront, path: str) -> tuple[bytes, BaseException | None]:
    """Send a GET for ``path`` and read until the front ends the connection: the bytes
    received, and the error that ended it (None for a clean close)."""
    reader, writer = await asyncio.open_connection(front.host, front.port)
    request = f"GET {path} HTTP/1.1\r\nHost: sandbox\r\nConnection: keep-alive\r\n\r\n"
    writer.write(request.encode())
    received = b""
    try:
        while piece := await reader.read(65536):
            received += piece
    except ConnectionResetError as exc:
        return received, exc
    finally:
        writer.close()
    return received, None


async def test_a_request_without_a_fault_is_relayed_on_a_closing_connection(
    front: WireFront, sandbox: Sandbox
) -> None:
    answer, error = await exchange(front, TWILIO)
    assert error is None
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert b"connection: close" in head.lower(), "every request meets the front afresh"
    assert b'"code": 20003' in body or b'"code":20003' in body
    assert [seen.provider for seen in sandbox.requests] == ["twilio"]
    assert front.played == []


async def test_a_reset_before_the_head_sends_nothing(front: WireFront, sandbox: Sandbox) -> None:
    sandbox.faults.wire("twilio", "reset-head")
    received, error = await exchange(front, TWILIO)
    assert (received, type(error)) == (b"", ConnectionResetError)
    assert sandbox.requests == [], "the sandbox app never saw it"
    assert front.played == [("twilio", "reset-head")]
    assert (await exchange(front, TWILIO))[1] is None, "used up: the next one is relayed"


async def test_a_reset_mid_body_cuts_the_real_answer(front: WireFront, sandbox: Sandbox) -> None:
    whole, _ = await exchange(front, TWILIO)
    sandbox.faults.wire("twilio", "reset-body")
    received, error = await exchange(front, TWILIO)
    assert type(error) is ConnectionResetError
    head = whole.partition(b"\r\n\r\n")[0]
    assert whole.startswith(received) and len(head) < len(received) < len(whole)


@pytest.mark.parametrize("kind", ["trickle-head", "trickle-body"])
async def test_a_trickle_sends_the_real_answer_a_byte_at_a_time(
    front: WireFront, sandbox: Sandbox, kind: str
) -> None:
    whole, _ = await exchange(front, TWILIO)
    head, _, body = whole.partition(b"\r\n\r\n")
    slow = len(head) + 4 if kind == "trickle-head" else len(body)
    sandbox.faults.wire("twilio", kind, interval=0.002)  # type: ignore[arg-type]
    started = time.monotonic()
    received, error = await exchange(front, TWILIO)
    elapsed = time.monotonic() - started
    assert error is None
    assert received.partition(b"\r\n\r\n")[2] == body
    assert elapsed >= slow * 0.002, "one pause per byte"


async def test_a_hang_holds_the_request_until_the_client_leaves(
    front: WireFront, sandbox: Sandbox
) -> None:
    sandbox.faults.wire("bird", "hang")
    reader, writer = await asyncio.open_connection(front.host, front.port)
    writer.write(f"GET {BIRD} HTTP/1.1\r\nHost: sandbox\r\n\r\n".encode())
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await reader.read(1)
    writer.close()
    assert front.played == [("bird", "hang")]
    assert sandbox.requests == []


async def test_faults_go_to_their_provider_only(front: WireFront, sandbox: Sandbox) -> None:
    sandbox.faults.wire("s3", "reset-head", times=2)
    assert (await exchange(front, TWILIO))[1] is None
    assert (await exchange(front, "/_s3/anything"))[1] is not None
    assert len(sandbox.faults.pending()) == 1


def test_bad_wire_faults_are_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown wire fault"):
        sandbox.faults.wire("twilio", "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown provider"):
        sandbox.faults.wire("nexmo", "hang")
    with pytest.raises(ValueError, match="interval"):
        sandbox.faults.wire("twilio", "trickle-head", interval=0)
