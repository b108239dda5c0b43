"""``GET`` and ``HEAD /media/{token}``: a recording's audio, streamed from its provider.

The token is checked before anything else (``MediaLinks.open``: 403, 410, 403 without an
upstream request). The upstream body is streamed chunk by chunk, never buffered, and the
upstream response is closed however the download ends, a client hanging up included.
A ``Range`` is forwarded; when an upstream ignores it, the gateway cuts the slice itself.

Metrics (``app.metrics``): the bytes relayed, by provider, as each chunk goes out, and the
streams in flight (``MEDIA_ACTIVE``), however they end.

Errors become HTTP statuses in one place, ``STATUSES``, with a short JSON body
``{"error": {"code": ..., "message": ...}}`` (the messages never carry credentials).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator

import anyio
import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.errors import (
    BadUserInputError,
    GatewayError,
    MediaLinkExpiredError,
    MediaLinkGoneError,
    MediaLinkInvalidError,
    ProviderError,
    RangeNotSatisfiableError,
    RateLimitedError,
    RecordingNotFoundError,
)
from app.logs import REQUEST, acting_for
from app.media.links import MediaClaim, MediaLinks
from app.media.ranges import ByteRange, content_range, cut
from app.metrics import MEDIA_ACTIVE, MEDIA_BYTES
from app.providers import RecordingProvider

logger = logging.getLogger("app.media.proxy")

#: The one GatewayError -> HTTP status mapping of the media route (first match wins).
STATUSES: tuple[tuple[type[GatewayError], int], ...] = (
    (MediaLinkInvalidError, 403),
    (MediaLinkExpiredError, 410),
    (MediaLinkGoneError, 403),
    (RecordingNotFoundError, 404),
    (RangeNotSatisfiableError, 416),
    (BadUserInputError, 400),
    (ProviderError, 502),
)

#: Upstream response headers passed on to the client (everything else stays behind).
FORWARDED = ("etag", "last-modified")


class MediaRoute:
    """``/media/{token}`` as an ASGI app: once the token says whose link it is, the download
    runs, streams and is logged (access log included) as that tenant's (``app.logs``)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        links: MediaLinks = request.state.media
        try:
            claim, source = links.open(request.path_params["token"])
        except GatewayError as exc:
            await error_response(exc)(scope, receive, send)
            return
        with acting_for(source.tenant):
            response = await serve(request, claim, source.adapter)
            await response(scope, receive, send)


async def serve(request: Request, claim: MediaClaim, adapter: RecordingProvider) -> Response:
    """The response for a verified claim: the media, or a short JSON error."""
    wanted = ByteRange.parse(request.headers.get("range"))
    try:
        upstream = await adapter.open_media(
            claim.recording_id, claim.format, wanted.header if wanted else None
        )
    except GatewayError as exc:
        return error_response(exc)
    try:
        return await relay(request, claim, upstream, wanted)
    except GatewayError as exc:
        await upstream.aclose()
        return error_response(exc)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await upstream.aclose()
        raise


async def relay(
    request: Request, claim: MediaClaim, upstream: httpx.Response, wanted: ByteRange | None
) -> Response:
    """The client's response over an open upstream response (200 or 206)."""
    headers = {
        "content-type": claim.content_type,
        "accept-ranges": "bytes",
        "content-disposition": f'inline; filename="{claim.filename}"',
        # Reusable by the link's holder only, and no longer than the link itself works.
        "cache-control": f"private, max-age={max(math.floor(claim.expires - time.time()), 0)}",
    }
    headers.update({name: upstream.headers[name] for name in FORWARDED if name in upstream.headers})
    length = _content_length(upstream)
    body: AsyncIterator[bytes] = upstream.aiter_raw()
    status = 200
    if upstream.status_code == 206:
        status = 206
        if "content-range" in upstream.headers:
            headers["content-range"] = upstream.headers["content-range"]
    elif wanted is not None and length is not None:  # upstream ignored the range: cut it here
        start, stop = wanted.resolve(length)
        headers["content-range"] = content_range(start, stop, length)
        status, length, body = 206, stop - start, cut(body, start, stop)
    if length is not None:
        headers["content-length"] = str(length)
    if request.method == "HEAD":
        await upstream.aclose()
        response = Response(status_code=status, headers=headers)
        if length is None:
            del response.headers["content-length"]
        return response
    return UpstreamStreamingResponse(upstream, body, status, headers, provider=claim.provider.value)


class UpstreamCutError(Exception):
    """The provider's body broke off after the response had started (logged already)."""


class UpstreamStreamingResponse(StreamingResponse):
    """A StreamingResponse that stops reading its upstream as soon as the client is gone,
    and closes the upstream response however the download ends.

    When the provider breaks off mid-body, the status line went out long ago: the only
    honest answer left is to cut the client's body short too (it sees a truncated download,
    never a complete-looking one). That is logged as one WARNING naming the provider and the
    bytes sent, and the response returns unfinished, so that uvicorn closes the connection;
    uvicorn's own "returned without completing response" for it is dropped
    (``app.logs.QuietCut``): no ERROR and no traceback for a provider's failure."""

    def __init__(
        self,
        upstream: httpx.Response,
        body: AsyncIterator[bytes],
        status: int,
        headers: dict[str, str],
        *,
        provider: str = "-",
    ) -> None:
        super().__init__(self._while_client_listens(body), status_code=status, headers=headers)
        self.upstream = upstream
        self.provider = provider
        self._relayed = MEDIA_BYTES.labels(provider)
        self._client_gone = False
        self._active = False

    def _started(self) -> None:
        if not self._active:
            self._active = True
            MEDIA_ACTIVE.inc()

    def _ended(self) -> None:
        """Counted once, as early as known: when the whole body was relayed (before the final
        empty message, so a client that has it all sees the gauge down), else when the
        response ends however it ends (client gone, provider cut, cancelled)."""
        if self._active:
            self._active = False
            MEDIA_ACTIVE.dec()

    async def _while_client_listens(self, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        sent = 0
        try:
            async for chunk in body:
                yield chunk
                sent += len(chunk)
                self._relayed.inc(len(chunk))
                if self._client_gone:
                    return
            self._ended()  # the whole body is out: counted before the client's last byte
        except httpx.TransportError as exc:
            logger.warning(
                "media download cut: %s broke off mid-stream after %d bytes sent (%s)",
                self.provider,
                sent,
                type(exc).__name__,
            )
            raise UpstreamCutError from None

    async def listen_for_disconnect(self, receive: Receive) -> None:
        await super().listen_for_disconnect(receive)
        # Starlette now cancels the sending task, but a task that never has to wait (the
        # upstream keeps its buffer full) would only see that cancellation after the whole
        # file: measured, 1.4 GB read upstream for a client gone after 200 KB. Stop here.
        self._client_gone = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._started()
        try:
            await super().__call__(scope, receive, send)
        except UpstreamCutError:
            current = REQUEST.get()
            if current is not None:
                current.cut = True
        finally:
            self._ended()
            with anyio.CancelScope(shield=True):
                await self.upstream.aclose()


def error_response(exc: GatewayError) -> Response:
    """The short JSON error of the media route."""
    status = next((code for kind, code in STATUSES if isinstance(exc, kind)), 500)
    headers = {"cache-control": "no-store"}
    if isinstance(exc, RangeNotSatisfiableError) and exc.size is not None:
        headers["content-range"] = f"bytes */{exc.size}"
    if isinstance(exc, RateLimitedError) and exc.retry_after is not None:
        headers["retry-after"] = str(exc.retry_after)
    if status >= 500:
        logger.warning("media download failed: %s (%s)", exc.code, exc.message)
    body = {"error": {"code": exc.code, "message": exc.message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length", "")
    return int(value) if value.isdigit() else None
