"""The upstream transports over real loopback sockets: the wire, the pool, bodies and errors.

Every test runs against both transports (``kind``: aiohttp, the default, and httpx's
own), on asyncio and uvloop (``conftest.py``): the fallback answers as the default does.
Where they genuinely differ, a test says so and asserts each.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
import trustme
from starlette.types import Message, Receive, Scope, Send

from app.models import Provider
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from tests.media.support import mint
from tests.servers import RawServer, raw_server, serve
from tests.support import gateway_client, graphql, sandbox_env
from tests.upstream.support import MB, head, pattern, transport, upstream_client

pytestmark = pytest.mark.anyio


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it was sent: method, path, the client's port, headers and body."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    headers = [(b"x-method", scope["method"].encode()), (b"x-port", b"%d" % scope["client"][1])]
    headers += [(b"x-got-" + name, value) for name, value in scope["headers"]]
    headers += [(b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    with serve(echo) as url:
        yield url


@contextlib.contextmanager
def answering(answer: bytes | None) -> Iterator[RawServer]:
    """A server that writes ``answer`` to each request and hangs up (or never answers)."""

    def handle(connection: socket.socket, over: threading.Event) -> None:
        if answer is None:
            over.wait(timeout=30)
        else:
            connection.sendall(answer)

    with raw_server(handle) as server:
        yield server


def reset_on_close(connection: socket.socket) -> None:
    """Closing the connection will reset it (no lingering), not end it in order."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


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


def read_only(seconds: float) -> httpx.Timeout:
    """A short read timeout, and a connect timeout long enough that a loaded machine's slow
    loopback connect is never mistaken for it (the read is what these tests are about)."""
    return httpx.Timeout(seconds, connect=10)


# --- requests, responses and the pool ------------------------------------------------------


async def test_request_and_response_cross_the_wire_unchanged(kind: str, echo_url: str) -> None:
    async with upstream_client(kind) as client:
        response = await client.post(
            f"{echo_url}/path?q=1",
            content=b"payload",
            headers=[("X-Twice", "one"), ("X-Twice", "two"), ("Authorization", "Basic eA==")],
        )
    assert response.status_code == 201
    assert response.reason_phrase == "Created"
    assert response.headers["x-method"] == "POST"
    assert response.headers.get_list("x-got-x-twice") == ["one", "two"]
    assert response.headers["x-got-authorization"] == "Basic eA=="
    assert response.headers["x-got-user-agent"].startswith("python-httpx/")
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.content == b"payload"


async def test_a_connection_is_kept_alive_and_reused(kind: str, echo_url: str) -> None:
    async with upstream_client(kind) as client:
        ports = {(await client.get(echo_url)).headers["x-port"] for _ in range(3)}
    assert len(ports) == 1


async def test_the_pool_holds_at_most_the_connections_the_settings_allow(
    kind: str, echo_url: str
) -> None:
    async def ports(client: httpx.AsyncClient) -> set[str]:
        answers = await asyncio.gather(*(client.get(echo_url) for _ in range(4)))
        return {response.headers["x-port"] for response in answers}

    async with upstream_client(kind, {"GATEWAY_UPSTREAM_MAX_CONNECTIONS": "1"}) as client:
        assert len(await ports(client)) == 1  # the four waited for the one connection
    async with upstream_client(kind) as client:
        assert len(await ports(client)) == 4  # the control: four at once, four connections


async def test_a_cookie_a_provider_sets_is_never_sent_back(kind: str) -> None:
    """One upstream client serves every user: a provider's cookie must not follow anyone."""
    sandbox_app = create_sandbox_app(DEMO)
    cookies_sent: list[bytes | None] = []

    async def setting_cookies(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            cookies_sent.append(dict(scope["headers"]).get(b"cookie"))

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = (b"set-cookie", b"session=someone-else; Path=/")
                message = {**message, "headers": [*message["headers"], cookie]}
            await send(message)

        await sandbox_app(scope, receive, with_cookie)

    ids = sandbox_app.state.sandbox.sample_ids()
    with serve(setting_cookies) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, transport(kind)) as client:
            for provider in ("TWILIO", "TWILIO", "BIRD"):
                body = await graphql(
                    client,
                    "query($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id } }",
                    {"p": provider, "id": ids[provider.lower()]},
                )
                assert "errors" not in body
    assert len(cookies_sent) >= 2
    assert set(cookies_sent) == {None}


# --- bodies -----------------------------------------------------------------------------------


async def chunks_of(kind: str, url: str, *, timeout: float = 10) -> list[bytes]:
    """Every chunk of the body at ``url``, as the transport hands them on."""
    async with upstream_client(kind, timeout=timeout) as client:
        async with client.stream("GET", url) as response:
            return [chunk async for chunk in response.aiter_raw()]


async def test_a_large_body_arrives_whole_in_bounded_chunks(kind: str) -> None:
    body = pattern(8 * MB + 12345)
    with sending(head(len(body)), body) as server:
        chunks = await chunks_of(kind, server.url)
    assert b"".join(chunks) == body
    # In pieces as they come, each at most what the transport buffers: what one download
    # holds in the gateway's memory, however slowly its client reads.
    assert len(chunks) > 8
    assert max(len(chunk) for chunk in chunks) <= MB


async def test_nothing_past_the_content_length_is_read(kind: str) -> None:
    body = pattern(2 * MB)
    with sending(head(len(body)) + body + b"EXTRA BYTES THE SERVER SHOULD NOT HAVE SENT") as server:
        chunks = await chunks_of(kind, server.url)
    assert b"".join(chunks) == body


async def test_a_slow_upstreams_bytes_are_passed_on_without_waiting_for_more(kind: str) -> None:
    first, second, rest = pattern(1000), pattern(2000)[1000:], pattern(3 * MB)
    body = first + second + rest
    seen_first, seen_second = threading.Event(), threading.Event()
    received = bytearray()
    with sending(head(len(body)) + first, seen_first, second, seen_second, rest) as server:
        async with upstream_client(kind, timeout=60) as client:
            async with client.stream("GET", server.url) as response:
                # Neither 1,000-byte piece fills a buffer; each must come through on its
                # own (the server sends nothing more until the test has seen it).
                async with asyncio.timeout(10):
                    async for chunk in response.aiter_raw():
                        received += chunk
                        if len(received) >= len(first):
                            seen_first.set()
                        if len(received) >= len(first) + len(second):
                            seen_second.set()
    assert received == body


async def test_a_large_body_read_to_its_end_leaves_the_connection_for_the_next(kind: str) -> None:
    body = pattern(2 * MB)

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(head(len(body)) + body)
        connection.settimeout(30)
        while (data := connection.recv(65536)) and b"\r\n\r\n" in data:
            connection.sendall(head(len(body)) + body)  # each request on it, in turn

    with raw_server(handle) as server:
        async with upstream_client(kind) as client:
            for _ in range(3):
                assert (await client.get(server.url)).content == body
    assert server.connections == 1


async def test_a_large_body_left_unread_hangs_up(kind: str) -> None:
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
        async with upstream_client(kind) as client, client.stream("GET", server.url) as response:
            async for _ in response.aiter_raw():
                break
        assert hung_up.wait(timeout=30), "the server could send the whole body"


async def test_a_chunked_body_closed_early_hangs_up(kind: str) -> None:
    hung_up = threading.Event()
    piece = b"x" * 65536

    async def endless(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        watcher = asyncio.ensure_future(receive())
        while not watcher.done():
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            # Once the client is gone, uvicorn's send returns at once: let the watcher run.
            await asyncio.sleep(0)
        message: Message = watcher.result()
        if message["type"] == "http.disconnect":
            hung_up.set()

    with serve(endless) as url:
        async with upstream_client(kind) as client, client.stream("GET", url) as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > 4 * len(piece):
                    break
        assert hung_up.wait(timeout=30), "the server never saw the connection close"


# --- errors: the same httpx exception from either transport ---------------------------------


async def test_connection_refused_is_a_connect_error(kind: str) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        async with upstream_client(kind) as client:
            with pytest.raises(httpx.ConnectError):
                await client.get(url)


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"", httpx.RemoteProtocolError),  # hangs up without answering
        (b"NOT HTTP AT ALL\r\n\r\n", httpx.RemoteProtocolError),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b", httpx.ReadError),
    ],
    ids=["hang-up", "garbage", "truncated-body"],
)
async def test_a_broken_answer_is_a_transport_error(
    kind: str, answer: bytes, error: type[httpx.TransportError]
) -> None:
    with answering(answer) as server:
        async with upstream_client(kind) as client:
            with pytest.raises(error):
                await client.get(server.url)


async def test_a_get_the_server_hangs_up_on_is_retried_by_aiohttp_only(kind: str) -> None:
    """Where the two differ: aiohttp sends an idempotent request once more when the
    connection closes before an answer (RFC 9112 9.3.1; it has no public switch for it),
    httpx's transport does not. A change in either shows here."""
    with answering(b"") as server:
        async with upstream_client(kind) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url)
    assert server.connections == {"aiohttp": 2, "httpx": 1}[kind]


async def test_a_connection_reset_before_the_answer_is_a_read_error(kind: str) -> None:
    def reset(connection: socket.socket, over: threading.Event) -> None:
        reset_on_close(connection)

    with raw_server(reset) as server:
        async with upstream_client(kind) as client:
            with pytest.raises(httpx.ReadError):
                await client.get(server.url)


async def test_a_full_pool_is_a_timeout(kind: str) -> None:
    """Where the two differ: aiohttp's "connect" timeout covers the wait for a free
    connection and the connecting alike, so a full pool is a ConnectTimeout there and a
    PoolTimeout over httpx's transport. Through the gateway both are "did not answer in
    time" (a TimeoutException)."""
    env = {"GATEWAY_UPSTREAM_MAX_CONNECTIONS": "1"}
    with answering(None) as server:
        async with upstream_client(kind, env, timeout=0.3) as client:
            holding, waiting = await asyncio.gather(
                client.get(server.url), client.get(server.url), return_exceptions=True
            )
    assert isinstance(holding, httpx.ReadTimeout)
    assert type(waiting) is {"aiohttp": httpx.ConnectTimeout, "httpx": httpx.PoolTimeout}[kind]
    assert server.connections == 1


async def test_a_body_cut_short_is_a_read_error_after_what_came(kind: str) -> None:
    body = pattern(4 * MB)
    seen_first = threading.Event()
    received = bytearray()

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(head(len(body)) + body[:1000])
        seen_first.wait(timeout=30)
        connection.sendall(body[1000:3000])  # then hangs up, 3,000 bytes in

    with raw_server(handle) as server:
        async with upstream_client(kind) as client, client.stream("GET", server.url) as response:
            with pytest.raises(httpx.ReadError):
                async for chunk in response.aiter_raw():
                    received += chunk
                    seen_first.set()
    assert received == body[:3000]  # what came before the hang-up is passed on first


async def test_a_chunked_body_gone_wrong_fails_after_what_came(kind: str) -> None:
    """Where the two differ: httpx says ReadError at once. aiohttp's C parser (3.14) drops
    the error and stops its read timer, so the body would never end; the transport's own
    read timeout ends it (ReadTimeout). A fixed aiohttp fails this test: then say ReadError."""
    seen_first = threading.Event()
    received = bytearray()

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        seen_first.wait(timeout=30)
        connection.sendall(b"zz\r\nnot a chunk size\r\n")
        over.wait(timeout=30)  # and keeps the connection open

    error = {"aiohttp": httpx.ReadTimeout, "httpx": httpx.ReadError}[kind]
    with raw_server(handle) as server:
        async with upstream_client(kind, timeout=read_only(0.3)) as client:
            async with client.stream("GET", server.url) as response:
                with pytest.raises(error):
                    async with asyncio.timeout(10):  # a failure, not a hang, if it never ends
                        async for chunk in response.aiter_raw():
                            received += chunk
                            seen_first.set()
    assert received == b"first"


async def test_a_body_reset_midway_is_a_read_error(kind: str) -> None:
    body = pattern(4 * MB)
    seen_first = threading.Event()

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(head(len(body)) + body[:1000])
        seen_first.wait(timeout=30)
        reset_on_close(connection)

    with raw_server(handle) as server:
        async with upstream_client(kind) as client, client.stream("GET", server.url) as response:
            with pytest.raises(httpx.ReadError):
                async for _ in response.aiter_raw():
                    seen_first.set()


async def test_a_server_that_never_answers_is_a_read_timeout(kind: str) -> None:
    with answering(None) as server:
        async with upstream_client(kind, timeout=read_only(0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url)


async def test_a_body_that_stalls_is_a_read_timeout(kind: str) -> None:
    body = pattern(4 * MB)
    received = bytearray()
    with sending(head(len(body)) + body[:MB]) as server:
        async with upstream_client(kind, timeout=read_only(0.3)) as client:
            async with client.stream("GET", server.url) as response:
                with pytest.raises(httpx.ReadTimeout):
                    async with asyncio.timeout(10):  # a failure, not a hang, if it never times out
                        async for chunk in response.aiter_raw():
                            received += chunk
    assert received == body[:MB]


# --- through the gateway ----------------------------------------------------------------------


async def signalwire_error(kind: str, base_url: str, **env: str) -> dict[str, Any]:
    """The first error of a SignalWire query through a gateway whose providers are at
    ``base_url``, over the real transport."""
    settings = Settings.from_env({**sandbox_env(DEMO, base_url), **env})
    async with gateway_client(settings, transport(kind)) as client:
        query = "query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { id } }"
        body = await graphql(client, query, {"id": "3b1b6ee5-5b36-4d0d-9c6e-0123456789ab"})
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_an_unreachable_provider_is_provider_unavailable_through_the_gateway(
    kind: str,
) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        error = await signalwire_error(kind, f"http://127.0.0.1:{unused.getsockname()[1]}")
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire could not be reached (ConnectError)"


async def test_the_upstream_timeout_applies_to_every_call(kind: str) -> None:
    with answering(None) as server:
        error = await signalwire_error(kind, server.url, GATEWAY_UPSTREAM_TIMEOUT="0.2")
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire did not answer within 0.2 s"


async def test_upstream_requests_carry_the_gateway_headers_over_the_real_transport(
    kind: str,
) -> None:
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    with serve(sandbox_app) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, transport(kind)) as client:
            body = await graphql(
                client,
                "query($id: ID!) { recording(provider: TWILIO, id: $id) { id } }",
                {"id": sandbox.sample_ids()["twilio"]},
            )
    assert body["data"]["recording"]["id"] == sandbox.sample_ids()["twilio"]
    (seen,) = sandbox.requests_to("twilio")
    assert seen.headers["user-agent"] == "recording-gateway/0.1"
    assert seen.headers["accept"] == "*/*"
    assert seen.headers["authorization"].startswith("Basic ")
    assert "cookie" not in seen.headers


async def test_a_media_download_asks_for_the_file_as_it_is_once(kind: str) -> None:
    """Each header once: the gateway's default Accept-Encoding gives way to ``identity``."""
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    with serve(sandbox_app) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, transport(kind)) as client:
            link = await mint(client, Provider.SIGNALWIRE, rid, fmt="WAV")
            response = await client.get(link, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    (seen,) = [r for r in sandbox.requests_to("signalwire") if r.url.endswith(".wav")]
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["range"] == "bytes=0-99"


# --- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_echo_url(certificate_authority: trustme.CA) -> Iterator[str]:
    with serve(echo, tls=certificate_authority.issue_cert("127.0.0.1")) as url:
        yield url


async def test_tls_with_a_certificate_no_known_authority_signed_is_refused(
    kind: str, tls_echo_url: str
) -> None:
    async with upstream_client(kind) as client:  # certifi's authorities, as the gateway runs
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(tls_echo_url)
