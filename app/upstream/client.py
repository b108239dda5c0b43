"""The gateway's one way out to the providers: requests over one shared transport.

Two ways through it, over the same transport:

- ``Upstream.open``: a whole-answer exchange, for the calls that read a small body to its end
  (a recording's metadata, a listing page). The caller gives a method, a URL string and the
  headers it computed once (``Upstream.headers``: the defaults and the account's credentials);
  it gets an ``Answer`` (status, headers, body chunks) and reads it within a size cap
  (``read_bounded``). Over aiohttp (``AiohttpTransport.open``) no httpx model is built: a
  ``recordingsByRef`` of 100 refs costs ~100 of these, one after the other on one event
  loop, and ``httpx.Request``/``httpx.Response`` (URL parsing, header models, body
  iterators) were ~20% of its CPU (without them: 24 instead of 34 ms of CPU per batch,
  ``tests/perf/README.md``). Over any other ``httpx.AsyncBaseTransport`` (httpx's own,
  or what a test injects: ``httpx.MockTransport``, ``httpx.ASGITransport``) the same call
  is an ``httpx.Request`` sent through it, the answer read from the ``httpx.Response``.
  Both raise the same ``httpx.TransportError`` subclasses, so the adapters translate one set.
- ``Upstream.request`` / ``transmit``: ``httpx`` models, for what must stream (media, a
  relayed body), follow redirects hop by hop, or send a body.

This is what ``httpx.AsyncClient`` would do for the adapters, without the parts the gateway
must not have or does itself: no cookie jar (one upstream client serves every user, so a
cookie set for one answer must never ride on a request made for someone else), no redirect
following (``HttpProvider.send`` follows by hand, deciding credentials per hop), no event
hooks. Measured on the 2-core CI machine with the sandbox adding 50 ms, a ``recordingsByRef``
of 100 refs took 1.88x a single request through ``AsyncClient.send`` and 1.57x through this:
the client's per-call bookkeeping cost about 20 ms of CPU per 100 calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import httpx

USER_AGENT = "recording-gateway/0.1"

#: Headers every upstream request carries (a caller's own replace them, by name).
DEFAULT_HEADERS: tuple[tuple[str, str], ...] = (
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate"),
    ("user-agent", USER_AGENT),
)

#: A request's headers as ``Upstream.headers`` builds them: lower-case names, one each.
Headers = Sequence[tuple[str, str]]


class BodyTooLarge(Exception):
    """An answer's body is, or was declared to be, over the cap ``read_bounded`` was given."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a body over {limit} bytes")
        self.limit = limit


class Answer(Protocol):
    """An upstream answer whose head has arrived; ``aclose`` it once done with the body
    (read to its end, the connection goes back to the pool; otherwise it is dropped)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:
        """Looked up by name in any case."""

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, decoded (``Content-Encoding``); a broken or stalled body
        is an ``httpx.TransportError`` (``ReadError``, ``ReadTimeout``)."""

    async def aclose(self) -> None: ...


@runtime_checkable
class OpensAnswers(Protocol):
    """A transport with its own whole-answer path (``AiohttpTransport``)."""

    async def open(self, method: str, url: str, headers: Headers, timeout: float) -> Answer: ...


async def read_bounded(
    headers: Mapping[str, str], chunks: AsyncIterator[bytes], limit: int
) -> bytes:
    """The whole body, or ``BodyTooLarge`` as soon as it is known to exceed ``limit`` (from
    ``Content-Length`` before reading, else counted while reading)."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        parts.append(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def credentials(auth: httpx.Auth) -> tuple[tuple[str, str], ...]:
    """The headers a one-step ``auth`` (Basic, Bird's AccessKey) adds to a request, computed
    once: its flow, asked for one request, never shown a response. The schemes the adapters
    use add the same header to every request (tests/providers check it on the wire)."""
    probe = httpx.Request("GET", "http://credentials.invalid/")
    before = dict(probe.headers.items())
    sent = next(auth.auth_flow(probe))
    return tuple((name, value) for name, value in sent.headers.items() if before.get(name) != value)


class _HttpxAnswer:
    """An ``Answer`` over an ``httpx.Response`` (any transport but aiohttp's)."""

    __slots__ = ("_response",)

    def __init__(self, response: httpx.Response) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    def chunks(self) -> AsyncIterator[bytes]:
        return self._response.aiter_bytes()

    async def aclose(self) -> None:
        await self._response.aclose()


class Upstream:
    """Builds and transmits upstream requests: default headers, timeouts, one-step auth."""

    def __init__(self, transport: httpx.AsyncBaseTransport, *, timeout: float) -> None:
        self._transport = transport
        #: Seconds one provider call may take (``GATEWAY_UPSTREAM_TIMEOUT``): each connect and
        #: read here, and the whole call, retries included, in ``app.resilience``.
        self.timeout = timeout
        self._timeout = httpx.Timeout(timeout).as_dict()
        self._headers = dict(DEFAULT_HEADERS)
        # The transport's own whole-answer path, if it has one (checked once, not per call).
        self._open = transport if isinstance(transport, OpensAnswers) else None

    @property
    def transport(self) -> httpx.AsyncBaseTransport:
        """The transport under every call (a test's may also play DNS: ``NameResolver``)."""
        return self._transport

    def headers(self, *extra: Iterable[tuple[str, str]]) -> Headers:
        """The defaults, then each of ``extra`` (e.g. ``credentials(auth)``), a later header
        replacing an earlier one of the same name: computed once per adapter, for ``open``."""
        merged = dict(self._headers)
        for pairs in extra:
            merged.update((name.lower(), value) for name, value in pairs)
        return tuple(merged.items())

    async def open(self, method: str, url: str, headers: Headers) -> Answer:
        """Send a bodiless request; the answer once its head arrived (its body unread).
        ``url`` is complete (query included); ``headers`` come from ``Upstream.headers``."""
        if self._open is not None:
            return await self._open.open(method, url, headers, self.timeout)
        request = httpx.Request(method, url, headers=headers, extensions={"timeout": self._timeout})
        response = await self._transport.handle_async_request(request)
        response.request = request
        return _HttpxAnswer(response)

    def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        content: bytes | None = None,
    ) -> httpx.Request:
        merged = httpx.Headers(self._headers)
        if headers:
            merged.update(headers)  # by name, whatever the case: one header each
        return httpx.Request(
            method,
            url,
            params=params,
            headers=merged,
            content=content,
            extensions={"timeout": self._timeout},
        )

    async def transmit(
        self, request: httpx.Request, *, auth: httpx.Auth | None = None, stream: bool = False
    ) -> httpx.Response:
        """The response; its body read unless ``stream`` (then the caller closes it).

        ``auth`` must be a one-step scheme (Basic, Bird's AccessKey): its flow is asked for
        one request and never shown the response.
        """
        if auth is not None:
            request = next(auth.auth_flow(request))
        response = await self._transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
