"""The default upstream transport: httpx's transport interface over aiohttp's pool and C parser.

Every upstream call is an ``httpx.Request`` sent by ``app.upstream.client.Upstream`` (tests inject
``httpx.MockTransport`` or ``httpx.ASGITransport`` instead); only the wire work below it
is aiohttp's. Measured on the 2-core CI machine, against a local server adding
50 ms: 100 concurrent GETs cost 0.98 ms of CPU per call with httpx's own transport (split
over 100 pools to dodge encode/httpcore#1035, whose pool bookkeeping is quadratic: 8.3 ms
per call with one pool) and 0.48 ms over aiohttp. ``GATEWAY_UPSTREAM_TRANSPORT=httpx``
switches to httpx's own (``app.upstream.httpx_transport``); both answer alike, the same
tests run against both.

A body streams through aiohttp's own reader, as it arrives: each chunk is all that piled up
(``StreamReader.iter_any``), so a fast upstream is relayed in few, large writes and a slow
one at once. aiohttp stops reading the socket while ``2 * READ_BUFFER`` bytes wait in its
buffer: that, and the chunk being written to our client, is what one download holds in
memory, however slowly the client reads. Measured relaying a 1 GB WAV (the gateway on a
CPU of its own): 370-400 ms of CPU per GB, 1.3 times nginx's ``proxy_pass`` in the same
runs (httpx's transport: 1.4 s); 2.4-2.9 MB per client reading at 5 MB/s. Of the
``read_bufsize`` values tried, 256 KB cost the least CPU (64 KB: +10%, 1 MB: +15% and
7 MB per slow client); ``iter_chunked`` cost 2.7 times as much. ``tests/perf/README.md``
has the method and the history.

This is the adapter of httpx-aiohttp 0.2, written here because that package maps every
aiohttp connection error, a server hanging up mid-answer included, to ``ConnectTimeout``
and streams in fixed 16 KB pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx

from app.upstream.proxies import Proxies
from app.upstream.tls import tls_context

READ_BUFFER = 1 << 18
#: The share of the pool one host may hold: a quarter, so that one slow provider cannot
#: take every connection from the others.
PER_HOST = 4

# Most specific first: the first match names the error. Each is the error httpx's own
# transport raises in the same case (tests/upstream/test_transport.py runs both).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    # Waiting for a free connection is part of aiohttp's "connect" timeout: a full pool
    # says ConnectTimeout here, PoolTimeout over httpx's transport (both TimeoutException).
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx.ReadError),  # a body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # e.g. a malformed status line
    (aiohttp.InvalidURL, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.ReadError),  # e.g. reset by the peer
    (aiohttp.ClientError, httpx.NetworkError),
    (TimeoutError, httpx.TimeoutException),  # any other timeout aiohttp lets out
)


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        for cause, error in _ERRORS:
            if isinstance(exc, cause):
                raise error(str(exc) or type(exc).__name__) from exc
        raise  # pragma: no cover - _ERRORS ends with both of the caught bases


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it before its end drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        content = self._response.content
        while True:
            with _as_httpx_errors():
                try:
                    # aiohttp's own read timeout stops for good when its C parser fails in
                    # the middle of a body (aiohttp 3.14: a malformed chunk), and the body
                    # then never ends: this one still does.
                    async with asyncio.timeout(self._read_timeout):
                        # All that is buffered at once: fewer, larger writes to our client.
                        chunk = await content.readany()
                except TimeoutError:
                    raise httpx.ReadTimeout("no byte of the body came in time") from None
            if not chunk:
                return
            yield chunk

    async def aclose(self) -> None:
        # Back to the pool when read to the end, otherwise the connection is closed.
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport over one ``aiohttp.ClientSession``, opened on first use."""

    def __init__(
        self,
        *,
        max_connections: int = 400,
        keepalive_expiry: float = 4.0,
        tls: ssl.SSLContext | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        self._max_connections = max_connections
        # Below the usual 5 s server keep-alive, so that we drop an idle connection before
        # the server closes it under a request.
        self._keepalive_expiry = keepalive_expiry
        self._tls = tls or tls_context()
        self._proxies = proxies or Proxies()
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=max(1, self._max_connections // PER_HOST),
            keepalive_timeout=self._keepalive_expiry,
            ssl=self._tls,
        )
        return aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies are never kept
            auto_decompress=False,  # httpx decodes, as it would over its own transport
            read_bufsize=READ_BUFFER,
            trust_env=False,  # proxies are ours to choose (app.upstream.proxies), no .netrc
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        timeout = request.extensions.get("timeout", {})
        with _as_httpx_errors():
            response = await self._session.request(
                request.method,
                str(request.url),
                headers=request.headers.multi_items(),
                data=await request.aread() or None,
                allow_redirects=False,
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent"),
                proxy=self._proxies.for_url(request.url),
                timeout=aiohttp.ClientTimeout(
                    connect=timeout.get("pool"),
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                ),
            )
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, timeout.get("read")),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("ascii", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
