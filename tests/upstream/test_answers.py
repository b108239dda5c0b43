"""``Upstream.open``, the whole-answer path of ``get_json``: over both transports, and over a
transport a test injects; and the library behaviour it relies on, each named.

Over aiohttp it builds no ``httpx`` model (``AiohttpTransport.open``); over anything else it
goes through ``httpx.Request``/``httpx.Response``. What a caller sees must not tell them apart:
status, headers by any case, the body decoded, the same credentials and default headers on
the wire once each. The errors are the transports' own (tests/upstream/test_transport.py),
and what the adapters make of them is tests/providers/test_fault_matrix.py's.
"""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager
from urllib.parse import urlencode

import aiohttp
import httpx
import pytest
from starlette.types import Receive, Scope, Send

from app.errors import ProviderUnavailableError
from app.models import MediaFormat, Provider
from app.providers.bird import AccessKeyAuth
from app.providers.twilio import TwilioProvider
from app.resilience import CallGuard, Resilience
from app.sandbox import DEMO
from app.settings import Settings
from app.upstream.client import (
    Answer,
    BodyTooLarge,
    Upstream,
    _HttpxAnswer,
    credentials,
    read_bounded,
)
from tests.servers import RawServer, raw_server, serve
from tests.support import gateway_client, graphql, sandbox_env
from tests.upstream.support import transport

pytestmark = pytest.mark.anyio

PAYLOAD = b'{"sid": "RE0123", "status": "completed"}' * 50


async def answer_app(scope: Scope, receive: Receive, send: Send) -> None:
    """``/gzip``: the payload gzip-compressed; ``/echo``: the request's headers as its own
    (``x-got-<name>``, the values of a name sent twice joined by `` | ``); ``/chunked``: the
    payload in 3 chunks, no length."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/gzip":
        body = gzip.compress(PAYLOAD)
        headers = [(b"content-encoding", b"gzip"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/chunked":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        third = len(PAYLOAD) // 3
        for part in (PAYLOAD[:third], PAYLOAD[third : 2 * third]):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": PAYLOAD[2 * third :]})
        return
    sent: dict[bytes, list[bytes]] = {}
    for name, value in scope["headers"]:
        sent.setdefault(name, []).append(value)
    got = [(b"x-got-" + name, b" | ".join(values)) for name, values in sent.items()]
    query = [(b"x-query", scope["query_string"])]
    await send({"type": "http.response.start", "status": 418, "headers": got + query})
    await send({"type": "http.response.body", "body": b"teapot"})


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(answer_app) as url:
        yield url


@pytest.fixture
async def upstream(kind: str) -> AsyncIterator[Upstream]:
    over = Upstream(transport(kind), timeout=5)
    try:
        yield over
    finally:
        await over.aclose()


async def whole(answer: Answer, limit: int = 1 << 20) -> bytes:
    try:
        return await read_bounded(answer.headers, answer.chunks(), limit)
    finally:
        await answer.aclose()


def test_only_aiohttps_transport_has_the_path_without_httpx_models(kind: str) -> None:
    """The control for the tests below: both paths are met (``kind`` aiohttp and httpx)."""
    lean = Upstream(transport(kind), timeout=5)._open is not None
    assert lean == (kind == "aiohttp")
    assert Upstream(httpx.MockTransport(lambda _: httpx.Response(200)), timeout=5)._open is None


async def test_status_headers_and_body_arrive_as_sent(upstream: Upstream, base_url: str) -> None:
    answer = await upstream.open("GET", f"{base_url}/echo", upstream.headers())
    assert answer.status == 418
    assert answer.headers["X-Got-User-Agent"] == "recording-gateway/0.1"  # any case
    assert await whole(answer) == b"teapot"


async def test_a_compressed_body_is_decoded(upstream: Upstream, base_url: str) -> None:
    """The default headers ask for gzip: the body read is the JSON, over both paths (aiohttp's
    session leaves bodies as sent for the media path; ``open`` asks it to decode)."""
    answer = await upstream.open("GET", f"{base_url}/gzip", upstream.headers())
    assert answer.headers["content-encoding"] == "gzip"
    assert await whole(answer) == PAYLOAD


async def test_a_body_in_pieces_is_read_whole(upstream: Upstream, base_url: str) -> None:
    answer = await upstream.open("GET", f"{base_url}/chunked", upstream.headers())
    assert "content-length" not in answer.headers
    assert await whole(answer) == PAYLOAD


@pytest.mark.parametrize("path", ["/gzip", "/chunked"])
async def test_a_body_over_the_cap_is_refused(upstream: Upstream, base_url: str, path: str) -> None:
    """Declared (``/gzip``: its Content-Length) or counted while reading (``/chunked``)."""
    answer = await upstream.open("GET", f"{base_url}{path}", upstream.headers())
    with pytest.raises(BodyTooLarge, match="a body over 100 bytes"):
        await whole(answer, limit=100)


async def test_the_headers_go_on_the_wire_once_each_with_the_credentials(
    upstream: Upstream, base_url: str
) -> None:
    """Also: aiohttp adds its own Accept, Accept-Encoding and User-Agent only to a request
    without them (``AiohttpTransport.open`` relies on it: it asks aiohttp to skip none)."""
    headers = upstream.headers(
        credentials(httpx.BasicAuth("AC123", "token")), [("Accept", "application/json")]
    )
    answer = await upstream.open("GET", f"{base_url}/echo?a=1", headers)
    await whole(answer)
    sent = answer.headers
    assert sent["x-got-authorization"] == "Basic QUMxMjM6dG9rZW4="
    assert sent["x-got-accept"] == "application/json"  # the caller's replaced the default
    assert sent["x-got-accept-encoding"] == "gzip, deflate"
    assert sent["x-got-user-agent"] == "recording-gateway/0.1"
    assert sent["x-query"] == "a=1"


def test_credentials_are_what_each_scheme_adds_to_a_request() -> None:
    assert credentials(httpx.BasicAuth("u", "p")) == (("authorization", "Basic dTpw"),)
    assert credentials(AccessKeyAuth("k3y")) == (("authorization", "AccessKey k3y"),)


async def test_an_injected_transport_sees_an_httpx_request() -> None:
    """Tests inject httpx transports: the whole-answer path reaches them as one request."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404, json={"code": 20404}, headers={"Retry-After": "3"})

    upstream = Upstream(httpx.MockTransport(handler), timeout=2.5)
    answer = await upstream.open("GET", "https://api.test/x.json?b=2", upstream.headers())
    assert isinstance(answer, _HttpxAnswer)
    assert (answer.status, answer.headers["retry-after"]) == (404, "3")
    assert await whole(answer) == b'{"code":20404}'
    (request,) = seen
    assert (request.method, str(request.url)) == ("GET", "https://api.test/x.json?b=2")
    assert request.extensions["timeout"] == httpx.Timeout(2.5).as_dict()


# --- library behaviour relied on --------------------------------------------------------------


def test_httpx_encodes_params_as_urlencode_does() -> None:
    """``HttpProvider.get_json`` puts its params into the URL with ``urlencode``; before, httpx
    did (``params=``). The same query either way: the providers see what they saw."""
    params = {
        "PageSize": "50",
        "DateCreated>": "2024-01-01",
        "startAt": "2023-10-23T15:55:08.000Z",
        "pageToken": "a b/c+d&é=",
    }
    url = "https://api.test/Recordings.json"
    assert str(httpx.Request("GET", url, params=params).url) == f"{url}?{urlencode(params)}"


def holding(event: threading.Event, body: bytes) -> AbstractContextManager[RawServer]:
    """A server sending a head for ``body``, then (once ``event`` is set) the body."""

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        event.wait(timeout=30)
        connection.sendall(body)
        over.wait(timeout=30)

    return raw_server(handle)


async def test_aiohttp_read_nowait_takes_what_is_buffered_and_at_eof_tells_the_end() -> None:
    """``app.upstream.aiohttp_transport._chunks`` takes buffered bytes without a timer
    (``StreamReader.read_nowait``: b"" when none, never waiting) and stops at
    ``at_eof()`` (the body ended and was all read), waiting only in between."""
    go = threading.Event()
    with holding(go, b"abcdef") as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url) as response:
                content = response.content
                assert content.read_nowait() == b""  # the head only: nothing buffered
                assert not content.at_eof()
                go.set()
                await content.wait_eof()
                assert not content.at_eof()  # ended, but not read yet
                assert content.read_nowait() == b"abcdef"
                assert content.at_eof()
                assert content.read_nowait() == b""


# --- through the gateway ----------------------------------------------------------------------


async def test_an_error_answer_cut_short_is_provider_unavailable(kind: str) -> None:
    """An error status whose body breaks off is the provider's network failing (retried as
    such), over both paths, as a 2xx body cut short is: never an untranslated httpx error."""

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n{")

    with raw_server(handle) as server:
        settings = Settings.from_env(
            {**sandbox_env(DEMO, server.url), "GATEWAY_RETRY_ATTEMPTS": "1"}
        )
        async with gateway_client(settings, transport(kind)) as client:
            query = "query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { id } }"
            body = await graphql(client, query, {"id": "3b1b6ee5-5b36-4d0d-9c6e-0123456789ab"})
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["message"] == "SignalWire broke off its answer (ReadError)"


async def test_a_streamed_error_answer_cut_short_is_provider_unavailable(kind: str) -> None:
    """The same through ``send``'s streaming path (a media download), over both transports."""

    def handle(connection: socket.socket, over: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 100\r\n\r\n{")

    with raw_server(handle) as server:
        upstream = Upstream(transport(kind), timeout=5)
        twilio = TwilioProvider(
            upstream,
            api_root=f"{server.url}/2010-04-01",
            account="AC" + "a" * 32,
            auth=httpx.BasicAuth("AC" + "a" * 32, "token"),
            guard=CallGuard(Provider.TWILIO, "Twilio", Resilience(timeout=5, attempts=1)),
        )
        try:
            with pytest.raises(ProviderUnavailableError) as raised:
                await twilio.open_media("RE" + "b" * 32, MediaFormat.WAV)
        finally:
            await upstream.aclose()
    assert str(raised.value) == "Twilio broke off its answer (ReadError)"
    assert raised.value.transient == "network"
