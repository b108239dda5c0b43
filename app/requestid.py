"""Every request has an id: the client's ``X-Request-ID`` when it is well-formed (1 to 128
of ``A-Z a-z 0-9 . _ : -``), else a new one (a uuid4, in hex). It is returned on every
response, refusals, preflights and media included, and named in every log line the request
causes (``app.logs``), so that a client's report and the gateway's log meet.

A pure ASGI middleware, the outermost one: it sees every response, CORS preflights and
refusals too, and never buffers a streamed body. A malformed id is replaced, not refused:
it would otherwise let a client write what it likes into the log (newlines, quotes).

The id is set in the request's context and not reset when the app returns: uvicorn serves
each request in its own task, so the id lives exactly as long as the request, and uvicorn's
own lines about it after the app returns ("Exception in ASGI application") carry it too.
"""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import REQUEST, RequestLog

HEADER = "x-request-id"
WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_of(given: str | None) -> str:
    """The client's id when well-formed, else a new one."""
    if given is not None and WELL_FORMED.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Names each HTTP request (``app.logs.REQUEST``) and answers with ``X-Request-ID``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = [value for name, value in scope["headers"] if name == HEADER.encode()]
        rid = request_id_of(given[0].decode("latin-1") if len(given) == 1 else None)
        REQUEST.set(RequestLog(rid))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)
