"""Large bodies read straight off the socket (``app.bodyreader``), over real loopback sockets.

What a large body must still be: every byte, in order, exactly ``Content-Length`` of them,
over plain TCP and TLS; chunks handed on never change afterwards; a slow upstream's bytes
are passed on at once; a truncated body is a ReadError and a stalled one a ReadTimeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager

import httpx
import pytest
import trustme
from starlette.types import Receive, Scope, Send

from app import bodyreader
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.servers import RawServer, raw_server, serve

pytestmark = pytest.mark.anyio

MB = 1 << 20


@pytest.fixture(
    params=[("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """aiohttp runs on asyncio only; the gateway serves on uvloop, whose transports differ."""
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


def pattern(size: int) -> bytes:
    """Bytes that never repeat at any offset that matters: a misplaced chunk shows."""
    return hashlib.shake_128(b"recording").digest(size)


def head(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % length


def sending(*parts: bytes | threading.Event) -> AbstractContextManager[RawServer]:
    """A server answering each request with ``parts`` in order: bytes are sent, an event
    is waited for (the test sets it once it has seen what came before). Then it reads
    until the client hangs up: the client decides when a connection ends."""

    def handle(connection: socket.socket, over: threading.Event) -> None:
        for part in parts:
            if isinstance(part, threading.Event):
                part.wait(timeout=30)
            else:
                connection.sendall(part)
        connection.settimeout(30)
        while connection.recv(65536):  # a second request here would never be answered
            pass

    return raw_server(handle)


async def chunks_of(url: str, *, timeout: float = 10) -> list[bytes]:
    """Every chunk of the body at ``url``, as the transport hands them on (kept alive)."""
    async with (
        httpx.AsyncClient(transport=AiohttpTransport(), timeout=timeout) as client,
        client.stream("GET", url) as response,
    ):
        return [chunk async for chunk in response.aiter_raw()]


async def test_a_large_body_arrives_whole_in_chunks_that_never_change() -> None:
    body = pattern(8 * MB + 12345)
    with sending(head(len(body)), body) as server:
        chunks = await chunks_of(server.url)
    # Every chunk was kept until now: had a buffer been read into again while a chunk
    # still viewed it, the joined body would differ.
    assert b"".join(chunks) == body
    assert all(isinstance(chunk, memoryview) for chunk in chunks[1:])  # never copied
    assert max(len(chunk) for chunk in chunks) <= bodyreader.CAPACITY


async def test_buffers_are_read_into_again_once_their_chunks_are_let_go() -> None:
    body = pattern(16 * MB)
    buffers: set[int] = set()
    received = bytearray()
    with sending(head(len(body)), body) as server:
        async with (
            httpx.AsyncClient(transport=AiohttpTransport()) as client,
            client.stream("GET", server.url) as response,
        ):
            async for chunk in response.aiter_raw():
                if isinstance(chunk, memoryview):
                    buffers.add(id(chunk.obj))  # the reader keeps its buffers alive
                received += chunk
                del chunk  # let it go, as a socket write does once done
    assert received == body
    # 16 MB in chunks of at most CAPACITY (512 KB): without reuse, at least 32 buffers.
    assert len(buffers) <= bodyreader.BUFFERS


async def test_nothing_past_the_content_length_is_read() -> None:
    body = pattern(2 * MB)
    with sending(head(len(body)) + body + b"EXTRA BYTES THE SERVER SHOULD NOT HAVE SENT") as server:
        chunks = await chunks_of(server.url)
    assert b"".join(chunks) == body


async def test_a_slow_upstreams_bytes_are_passed_on_without_waiting_for_more() -> None:
    first, second, rest = pattern(1000), pattern(2000)[1000:], pattern(3 * MB)
    body = first + second + rest
    seen_first, seen_second = threading.Event(), threading.Event()
    received = bytearray()
    with sending(head(len(body)) + first, seen_first, second, seen_second, rest) as server:
        async with (
            httpx.AsyncClient(transport=AiohttpTransport(), timeout=60) as client,
            client.stream("GET", server.url) as response,
        ):
            # Neither 1,000-byte piece is a full chunk; each must come through on its own
            # (the server sends nothing more until the test has seen it).
            async with asyncio.timeout(10):
                async for chunk in response.aiter_raw():
                    received += chunk
                    if len(received) >= len(first):
                        seen_first.set()
                    if len(received) >= len(first) + len(second):
                        seen_second.set()
    assert received == body


async def test_a_body_cut_short_is_a_read_error_after_what_came() -> None:
    body = pattern(4 * MB)
    seen_first = threading.Event()
    received = bytearray()

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(head(len(body)) + body[:1000])
        seen_first.wait(timeout=30)
        connection.sendall(body[1000:3000])  # then hangs up, 2,000 bytes in

    with raw_server(handle) as server:
        async with (
            httpx.AsyncClient(transport=AiohttpTransport()) as client,
            client.stream("GET", server.url) as response,
        ):
            with pytest.raises(httpx.ReadError, match="before the end of the body"):
                async for chunk in response.aiter_raw():
                    received += chunk
                    seen_first.set()
    assert received == body[:3000]  # what came before the hang-up is passed on first


async def test_a_body_that_stalls_is_a_read_timeout() -> None:
    body = pattern(4 * MB)
    received = bytearray()
    with sending(head(len(body)) + body[:MB]) as server:
        async with (
            httpx.AsyncClient(transport=AiohttpTransport(), timeout=0.3) as client,
            client.stream("GET", server.url) as response,
        ):
            with pytest.raises(httpx.ReadTimeout):
                async with asyncio.timeout(10):  # a failure, not a hang, if it never times out
                    async for chunk in response.aiter_raw():
                        received += chunk
    assert received == body[:MB]


async def test_the_connection_is_closed_after_a_large_body_and_the_next_request_works() -> None:
    body = pattern(2 * MB)
    with sending(head(len(body)), body) as server:
        async with httpx.AsyncClient(transport=AiohttpTransport()) as client:
            for _ in range(3):
                response = await client.get(server.url)
                assert response.content == body
    assert server.connections == 3  # never put back in the pool mid-parse


async def test_leaving_a_large_body_unread_hangs_up() -> None:
    body = pattern(64 * MB)
    hung_up = threading.Event()

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(head(len(body)))
        try:
            for start in range(0, len(body), MB):
                connection.sendall(body[start : start + MB])
        except OSError:
            hung_up.set()

    with raw_server(handle) as server:
        async with (
            httpx.AsyncClient(transport=AiohttpTransport()) as client,
            client.stream("GET", server.url) as response,
        ):
            async for _ in response.aiter_raw():
                break
        assert hung_up.wait(timeout=30), "the server could send the whole body"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_media_url(certificate_authority: trustme.CA) -> Iterator[str]:
    body = pattern(5 * MB + 7)

    async def media(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"audio/wav")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(body), 100_000):  # in pieces, as a server streams
            piece = body[start : start + 100_000]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(media, tls=certificate_authority.issue_cert("127.0.0.1")) as url:
        yield url


async def test_a_large_body_over_tls(tls_media_url: str, certificate_authority: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    certificate_authority.configure_trust(trusting)
    async with (
        httpx.AsyncClient(transport=AiohttpTransport(tls=trusting)) as client,
        client.stream("GET", tls_media_url) as response,
    ):
        chunks = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(chunks) == pattern(5 * MB + 7)
    assert any(isinstance(chunk, memoryview) for chunk in chunks)


async def test_closing_the_transport_waits_for_a_tls_connection_it_took_a_body_from(
    certificate_authority: trustme.CA,
) -> None:
    """aiohttp's pool waits at close for its own connections only: this one is ours."""
    body = pattern(2 * MB)
    said_goodbye = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(server_side)

    def serve_once() -> None:
        raw, _ = listener.accept()
        with server_side.wrap_socket(raw, server_side=True) as connection:
            connection.settimeout(30)
            while b"\r\n\r\n" not in connection.recv(65536):
                pass
            connection.sendall(head(len(body)) + body)
            while connection.recv(65536):  # until the client's close_notify
                pass
            said_goodbye.set()  # before answering it: the client's close can't end sooner
            connection.unwrap()

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    trusting = ssl.create_default_context()
    certificate_authority.configure_trust(trusting)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(transport=AiohttpTransport(tls=trusting)) as client:
            assert (await client.get(url)).content == body
        assert said_goodbye.is_set(), "the transport closed without waiting for the TLS close"
    finally:
        thread.join(timeout=30)
        listener.close()
