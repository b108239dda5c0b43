"""The upstream transport over real loopback sockets: the wire, the pool, and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import trustme
from starlette.types import Message, Receive, Scope, Send

from app.models import Provider
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from app.upstream.aiohttp_transport import AiohttpTransport
from tests.media.support import mint
from tests.servers import RawServer, raw_server, serve
from tests.support import gateway_client, graphql, sandbox_env

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiohttp runs on asyncio only


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


@contextlib.asynccontextmanager
async def upstream_client(timeout: float = 10) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=AiohttpTransport(), timeout=timeout) as client:
        yield client


async def test_request_and_response_cross_the_wire_unchanged(echo_url: str) -> None:
    async with upstream_client() as client:
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


async def test_a_connection_is_kept_alive_and_reused(echo_url: str) -> None:
    async with upstream_client() as client:
        ports = {(await client.get(echo_url)).headers["x-port"] for _ in range(3)}
    assert len(ports) == 1


async def test_a_large_body_streams_in_pieces_and_an_early_close_hangs_up() -> None:
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
        message: Message = watcher.result()
        if message["type"] == "http.disconnect":
            hung_up.set()

    with serve(endless) as url:
        async with upstream_client() as client, client.stream("GET", url) as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > 4 * len(piece):
                    break
        assert hung_up.wait(timeout=30), "the server never saw the connection close"


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        async with upstream_client() as client:
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
    answer: bytes, error: type[httpx.TransportError]
) -> None:
    with answering(answer) as server:
        async with upstream_client() as client:
            with pytest.raises(error):
                await client.get(server.url)


async def test_a_get_the_server_hangs_up_on_is_sent_once_more_then_fails() -> None:
    with answering(b"") as server:
        async with upstream_client() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(server.url)
    assert server.connections == 2


async def test_a_server_that_never_answers_is_a_read_timeout() -> None:
    with answering(None) as server:
        async with upstream_client(timeout=0.2) as client:
            with pytest.raises(httpx.ReadTimeout):
                await client.get(server.url)


async def signalwire_error(base_url: str, **env: str) -> dict[str, Any]:
    """The first error of a SignalWire query through a gateway whose providers are at
    ``base_url``, over the real transport."""
    settings = Settings.from_env({**sandbox_env(DEMO, base_url), **env})
    async with gateway_client(settings, AiohttpTransport()) as client:
        query = "query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { id } }"
        body = await graphql(client, query, {"id": "3b1b6ee5-5b36-4d0d-9c6e-0123456789ab"})
    error: dict[str, Any] = body["errors"][0]
    return error


async def test_an_unreachable_provider_is_provider_unavailable_through_the_gateway() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        error = await signalwire_error(f"http://127.0.0.1:{unused.getsockname()[1]}")
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire could not be reached (ConnectError)"


async def test_a_cookie_a_provider_sets_is_never_sent_back() -> None:
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
    settings = Settings.from_env(sandbox_env(DEMO))
    async with gateway_client(settings, httpx.ASGITransport(app=setting_cookies)) as client:
        for provider in ("TWILIO", "TWILIO", "BIRD"):
            body = await graphql(
                client,
                "query($p: Provider!, $id: ID!) { recording(provider: $p, id: $id) { id } }",
                {"p": provider, "id": ids[provider.lower()]},
            )
            assert "errors" not in body
    assert len(cookies_sent) >= 2
    assert set(cookies_sent) == {None}


async def test_upstream_requests_carry_the_gateway_headers_over_the_real_transport() -> None:
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    with serve(sandbox_app) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, AiohttpTransport()) as client:
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


async def test_the_upstream_timeout_applies_to_every_call() -> None:
    with answering(None) as server:
        error = await signalwire_error(server.url, GATEWAY_UPSTREAM_TIMEOUT="0.2")
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire did not answer in time"


async def test_a_media_download_asks_for_the_file_as_it_is_once() -> None:
    """Each header once: the gateway's default Accept-Encoding gives way to ``identity``."""
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    rid = sandbox.sample_ids()["signalwire"]
    with serve(sandbox_app) as url:
        settings = Settings.from_env(sandbox_env(DEMO, url))
        async with gateway_client(settings, AiohttpTransport()) as client:
            link = await mint(client, Provider.SIGNALWIRE, rid, fmt="WAV")
            response = await client.get(link, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    (seen,) = [r for r in sandbox.requests_to("signalwire") if r.url.endswith(".wav")]
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["range"] == "bytes=0-99"


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_echo_url(certificate_authority: trustme.CA) -> Iterator[str]:
    with serve(echo, tls=certificate_authority.issue_cert("127.0.0.1")) as url:
        yield url


async def test_tls_with_a_trusted_certificate(
    tls_echo_url: str, certificate_authority: trustme.CA
) -> None:
    trusting = ssl.create_default_context()
    certificate_authority.configure_trust(trusting)
    async with httpx.AsyncClient(transport=AiohttpTransport(tls=trusting)) as client:
        response = await client.post(tls_echo_url, content=b"over TLS")
    assert response.status_code == 201
    assert response.content == b"over TLS"


async def test_tls_with_a_certificate_no_known_authority_signed_is_refused(
    tls_echo_url: str,
) -> None:
    async with upstream_client() as client:  # certifi's authorities, as the gateway runs
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(tls_echo_url)
