"""The fallback upstream transport: httpx's own ``AsyncHTTPTransport`` (httpcore and h11).

``GATEWAY_UPSTREAM_TRANSPORT=httpx`` picks it, for when aiohttp is the suspect. It costs
more CPU: twice per call (see ``app.upstream.aiohttp_transport``), 3.5 times per GB of media
relayed, and its one pool's bookkeeping grows with connections times waiting requests
(encode/httpcore#1035): a ``recordingsByRef`` of 100 refs took 1.2 s instead of 70 ms
(``tests/perf/README.md``). Two things are added around it, so that the two transports
answer alike:

- an egress proxy chosen per request (``app.upstream.proxies``): httpx's transport takes
  one ``proxy=`` for its whole pool, so there is one transport per proxy, and one direct;
- a body that ends early or malformed is ``httpx.ReadError``, as over aiohttp (httpcore
  says ``RemoteProtocolError`` when the upstream hangs up in the middle of a body, and
  ``ReadError`` when it resets the connection there).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import httpx

from app.upstream.proxies import Proxies
from app.upstream.tls import tls_context


class _Body(httpx.AsyncByteStream):
    """httpcore's body stream, with a broken body a ``ReadError`` whatever broke it."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except httpx.RemoteProtocolError as exc:
            raise httpx.ReadError(str(exc)) from exc

    async def aclose(self) -> None:
        await self._stream.aclose()


class HttpxTransport(httpx.AsyncBaseTransport):
    """httpx's ``AsyncHTTPTransport``: one direct, and one per egress proxy."""

    def __init__(
        self,
        *,
        max_connections: int = 400,
        keepalive_expiry: float = 4.0,
        tls: ssl.SSLContext | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        tls = tls or tls_context()
        # Every idle connection is kept (aiohttp's pool does the same), each pool has its
        # own limit. httpcore has no per-host limit.
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
        )
        self._proxies = proxies or Proxies()
        self._direct = httpx.AsyncHTTPTransport(verify=tls, limits=limits, trust_env=False)
        self._via = {
            url: httpx.AsyncHTTPTransport(
                verify=tls, limits=limits, trust_env=False, proxy=httpx.Proxy(url)
            )
            for url in self._proxies.urls
        }

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        proxy = self._proxies.for_url(request.url)
        transport = self._direct if proxy is None else self._via[proxy]
        response = await transport.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response

    async def aclose(self) -> None:
        for transport in (self._direct, *self._via.values()):
            await transport.aclose()
