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

``AiohttpTransport.open`` is the whole-answer path of ``app.upstream.client.Upstream.open``
(metadata, listing pages): the same session, timeouts, proxies and errors, without an
``httpx.Request`` or ``httpx.Response`` per call; aiohttp decodes a compressed body there
(``auto_decompress`` per request), as httpx does on the streaming path.

This is the adapter of httpx-aiohttp 0.2, written here because that package maps every
aiohttp connection error, a server hanging up mid-answer included, to ``ConnectTimeout``
and streams in fixed 16 KB pieces.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterator, Mapping

import aiohttp
import httpx

from app.upstream.client import Headers
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


#: Headers aiohttp adds to a request that lacks them: skipped for an httpx request (sent as
#: httpx built it). ``open``'s requests always carry all three (``Upstream.headers``), so
#: aiohttp adds none there unasked, and builds no set of names to skip per request.
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent")


def _httpx_error(exc: aiohttp.ClientError | TimeoutError) -> httpx.TransportError:
    """The httpx error httpx's own transport raises in the same case."""
    for cause, error in _ERRORS:
        if isinstance(exc, cause):
            return error(str(exc) or type(exc).__name__)
    raise AssertionError("unreachable: _ERRORS ends with both of the caught bases")


@contextlib.contextmanager
def _as_httpx_errors() -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _httpx_error(exc) from exc


async def _chunks(
    response: aiohttp.ClientResponse, read_timeout: float | None
) -> AsyncIterator[bytes]:
    """The body as it arrives, each chunk all that is buffered; httpx errors.

    What is buffered already is taken without a wait (``read_nowait``: a small answer is
    usually whole by the time its head is parsed) and the end seen from ``at_eof``: only a
    wait for more bytes needs a timer (``tests/upstream/test_answers.py`` names both).
    """
    content = response.content
    while True:
        try:
            # All that is buffered at once: fewer, larger writes to our client.
            chunk = content.read_nowait()
            if not chunk and not content.at_eof():
                # aiohttp's own read timeout stops for good when its C parser fails in the
                # middle of a body (aiohttp 3.14: a malformed chunk), and the body then
                # never ends: this one still does.
                async with asyncio.timeout(read_timeout):
                    chunk = await content.readany()
        except TimeoutError:
            raise httpx.ReadTimeout("no byte of the body came in time") from None
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc) from exc
        if not chunk:
            return
        yield chunk


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it before its end drops the connection."""

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in _chunks(self._response, self._read_timeout):
            yield chunk

    async def aclose(self) -> None:
        # Back to the pool when read to the end, otherwise the connection is closed.
        self._response.release()


class AiohttpAnswer:
    """``app.upstream.client.Answer`` over an ``aiohttp.ClientResponse``."""

    __slots__ = ("_read_timeout", "_response")

    def __init__(self, response: aiohttp.ClientResponse, read_timeout: float) -> None:
        self._response = response
        self._read_timeout = read_timeout

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def chunks(self) -> AsyncIterator[bytes]:
        return _chunks(self._response, self._read_timeout)

    async def aclose(self) -> None:
        self._response.release()  # as ``_Body.aclose``


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
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

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
                skip_auto_headers=_SKIP_AUTO_HEADERS,
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

    async def open(self, method: str, url: str, headers: Headers, timeout: float) -> AiohttpAnswer:
        """A bodiless request, its answer once the head arrived: ``Upstream.open``'s path.
        ``timeout`` bounds the wait for a connection, the connect and each read, as the
        ``httpx.Timeout(timeout)`` of the other path does."""
        if self._session is None:
            self._session = self._open()
        limits = self._timeouts.get(timeout)
        if limits is None:
            limits = self._timeouts[timeout] = aiohttp.ClientTimeout(
                connect=timeout, sock_connect=timeout, sock_read=timeout
            )
        try:
            response = await self._session.request(
                method,
                url,
                headers=headers,
                allow_redirects=False,
                proxy=self._proxies.for_address(url),
                timeout=limits,
                auto_decompress=True,  # as httpx's ``aiter_bytes`` on the other path
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _httpx_error(exc) from exc
        return AiohttpAnswer(response, timeout)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
