"""``GET /export/recordings.csv`` and ``GET /export/recordings.ndjson``.

Before the first byte, in this order and with no upstream request until the last step (a
``HEAD`` stops before it, with the headers a ``GET`` would have):

1. **Credentials**, as at ``/graphql`` (``Authenticator``): missing or not accepted is 401 with
   ``WWW-Authenticate: Bearer``;
2. **Scope** ``recordings:read``, else 403 FORBIDDEN;
3. **Filter** (``app.export.params``): a bad parameter is 400 BAD_USER_INPUT, a named provider
   that is not configured 400 PROVIDER_NOT_CONFIGURED;
4. **The first round of pages**, every selected provider at once. A provider failing here,
   when nothing has been sent, gets a proper status: 503 when it is unavailable or throttles
   us (with its ``Retry-After``), 502 when it answers wrongly, 429 (``Retry-After``) when the
   tenant's rate limit cannot pay for the pages.

Every refusal is the gateway's JSON error shape, ``{"errors": [{"message", "extensions":
{"code", ...}}]}``, as the gate's (``app.access.gate.refusal``).

Then the response starts (200) and streams the rows run by run as pages arrive
(``app.export.stream``). A failure after that can no longer change the status: the NDJSON
ends with an error line; the CSV is **cut**, that is the response ends without its last chunk
so that the connection closes and the client sees a truncated transfer (``ExportCutError``,
the media route's way: ``app.media.proxy``). Either is logged as one WARNING line naming the
provider and the rows sent; uvicorn's own "returned without completing response" for the cut
is dropped (``app.logs.QuietCut``).

``Content-Disposition: attachment; filename="recordings-<from>-<to>.<ext>"``: the filter's
bounds in UTC (``2026-11-01`` for a midnight, else ``2026-11-01T103000Z``), ``all`` for a
missing ``createdAfter`` and ``now`` for a missing ``createdBefore``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app.access.authenticate import Authenticator
from app.access.gate import refusal
from app.access.ratelimit import RateLimiter
from app.errors import (
    BadUserInputError,
    ForbiddenError,
    GatewayError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderUnavailableError,
    RateLimitedError,
    RateLimitExceededError,
    UnauthenticatedError,
)
from app.export.params import read_filter
from app.export.rows import Row
from app.export.stream import Export, ExportFailedError
from app.export.writers import WRITERS, CsvWriter, NdjsonWriter
from app.listing.merge import ListFilter
from app.logs import REQUEST, acting_for
from app.settings import Settings
from app.tenants import Tenant

logger = logging.getLogger("app.export")

#: The scope an export needs: it reads what ``recordings`` reads.
SCOPE = "recordings:read"

#: The one GatewayError -> HTTP status mapping of the export (first match wins).
STATUSES: tuple[tuple[type[GatewayError], int], ...] = (
    (ForbiddenError, 403),
    (BadUserInputError, 400),
    (ProviderNotConfiguredError, 400),
    (RateLimitExceededError, 429),
    (RateLimitedError, 503),
    (ProviderUnavailableError, 503),
    (ProviderError, 502),
)

_SAFE = re.compile(r"[^A-Za-z0-9-]")


class ExportRoute:
    """The export in ``fmt`` ("csv" or "ndjson") as an ASGI app (see the module docstring)."""

    def __init__(self, fmt: str) -> None:
        self.writer = WRITERS[fmt]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        access: Authenticator = request.state.access
        try:
            principal = await access.authenticate(request.headers.get("authorization"))
        except UnauthenticatedError as exc:
            await refusal(exc)(scope, receive, send)
            return
        with acting_for(principal.tenant.name):
            try:
                if SCOPE not in principal.scopes:
                    raise ForbiddenError(
                        f"an export needs the {SCOPE} scope, which the caller lacks"
                    )
                response = await self.start(request, principal.tenant)
            except GatewayError as exc:
                response = error_response(exc)
            await response(scope, receive, send)

    async def start(self, request: Request, tenant: Tenant) -> Response:
        """The streaming response, once the first round of pages has come in."""
        settings: Settings = request.state.settings
        limiter: RateLimiter = request.state.limiter
        flt = read_filter(request.query_params)
        export = Export(
            tenant,
            flt,
            limiter=limiter,
            page_size=settings.max_page_size,
            page_timeout=settings.request_timeout,
        )
        writer = self.writer()
        headers = {
            "content-disposition": f'attachment; filename="{filename(flt, writer.extension)}"',
            "cache-control": "no-store",
            "x-content-type-options": "nosniff",
            # Rows asked of each provider per page (the CLI's progress counts pages with it).
            "x-export-page-size": str(settings.max_page_size),
        }
        if request.method == "HEAD":  # what a GET would be, without reading any provider
            return Response(headers=headers, media_type=writer.media_type)
        batches = export.batches()
        try:
            first: list[Row] = await anext(batches, [])
        except ExportFailedError as exc:
            await batches.aclose()
            raise exc.error from None
        body = _body(writer, export, first, batches)
        return ExportResponse(body, headers=headers, media_type=writer.media_type)


class ExportCutError(Exception):
    """A CSV export failed after its response had started (logged already)."""


async def _body(
    writer: CsvWriter | NdjsonWriter,
    export: Export,
    first: list[Row],
    batches: AsyncGenerator[list[Row]],
) -> AsyncIterator[bytes]:
    try:
        yield writer.header() + writer.rows(first)
        async for batch in batches:
            yield writer.rows(batch)
    except ExportFailedError as exc:
        trailer = writer.failure(exc.error)
        error = exc.error
        logger.warning(
            "export %s: %s failed after %d rows sent (%s: %s)",
            "cut" if trailer is None else "ended with an error line",
            error.provider.name if error.provider is not None else "the gateway",
            exc.rows,
            error.code,
            error.message,
        )
        if trailer is None:
            raise ExportCutError from None
        yield trailer
    finally:
        await batches.aclose()


class ExportResponse(StreamingResponse):
    """A StreamingResponse that a failed CSV export leaves unfinished (see the module
    docstring), and that closes the walk (its pages in flight) however it ends."""

    def __init__(self, body: AsyncIterator[bytes], **kwargs: Any) -> None:
        super().__init__(body, **kwargs)
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except ExportCutError:
            current = REQUEST.get()
            if current is not None:
                current.cut = True
        finally:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


def error_response(exc: GatewayError) -> Response:
    """The JSON error of a refused export, in the gateway's shape."""
    status = next((code for kind, code in STATUSES if isinstance(exc, kind)), 500)
    headers = {"cache-control": "no-store"}
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        headers["retry-after"] = str(retry_after)
    if status >= 500:
        logger.warning("export refused: %s (%s)", exc.code, exc.message)
    body = {"errors": [{"message": exc.message, "extensions": exc.extensions}]}
    return JSONResponse(body, status_code=status, headers=headers)


def filename(flt: ListFilter, extension: str) -> str:
    """``recordings-<from>-<to>.<extension>`` (see the module docstring)."""
    after, before = flt.query.created_after, flt.query.created_before
    start = _bound(after) if after is not None else "all"
    end = _bound(before) if before is not None else "now"
    return f"recordings-{start}-{end}.{extension}"


def _bound(moment: datetime) -> str:
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d") if utc.time() == time() else utc.strftime("%Y-%m-%dT%H%M%SZ")
    return _SAFE.sub("", text)
