"""``POST /webhooks/{provider}/{tenant}``: a provider's push, verified, acknowledged, worked on.

In this order, so that nothing is done for a delivery the provider did not sign:

1. **Who**: the tenant's receiver for the provider (``Webhooks.receiver``); none (an unknown
   tenant, or a provider without a signing key) is 404, the same answer for both, so the
   URL tells nobody which tenants exist. Any method but POST is 405.
2. **Size**: a body over ``MAX_BODY_BYTES`` (64 KiB: a callback is a few hundred bytes) is
   413, from its ``Content-Length`` when it has one, else as soon as the bytes read pass it
   (never buffered whole).
3. **Signature** (``app.webhooks.signatures``), over the URL the provider called:
   ``GATEWAY_PUBLIC_URL`` + the path and query when it is set (behind a reverse proxy the
   gateway's own URL is not the one the provider signed), else the request's own URL. Bad
   or missing: 403, one WARNING line (provider, tenant; never a key or a signature), and
   nothing else happens.
4. **What it says** (``app.webhooks.notices``): an event the gateway does not act on, or a
   body it cannot read, is 200 and ignored: it is authentic, and a 4xx would only make the
   provider retry it (Bird for 8 hours) or report it failed.
5. **Seen before** (``app.webhooks.dedupe``): the same delivery (same recording or
   transcription, same status) within ``GATEWAY_WEBHOOK_DEDUPE_TTL`` is 200 and ignored,
   whichever replica saw it first.
6. **Work**: started after the answer (``Webhooks.start``); 200 at once. With
   ``GATEWAY_WEBHOOK_MAX_PENDING`` deliveries already being worked on, 503 with
   ``Retry-After`` instead: the provider sends it again later.

Answers are JSON: ``{"outcome": "accepted" | "duplicate" | "ignored"}``, or an error in the
shape of the gateway's other non-GraphQL routes, ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.errors import (
    BadRequestError,
    MethodNotAllowedError,
    PayloadTooLargeError,
    RequestRefusedError,
)
from app.logs import acting_for
from app.models import Provider
from app.webhooks.errors import (
    NoReceiverError,
    WebhooksBusyError,
    WebhookSignatureError,
)
from app.webhooks.notices import Ignored, bird_notice, laml_notice
from app.webhooks.receivers import Receiver, Webhooks
from app.webhooks.signatures import bird_valid, twilio_valid
from app.webhooks.work import Job

logger = logging.getLogger("app.webhooks")

#: The largest body a receiver reads.
MAX_BODY_BYTES = 64 * 1024
#: Seconds a provider is asked to wait when the gateway has too much work going on.
BUSY_RETRY_AFTER = 5
_FORM = "application/x-www-form-urlencoded"


class WebhookRoute:
    """The receivers of one provider, one per tenant, as an ASGI app."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        tenant = str(request.path_params.get("tenant", ""))
        try:
            webhooks: Webhooks = request.state.webhooks
            receiver = webhooks.receiver(self.provider, tenant)
            if receiver is None:
                raise NoReceiverError("no webhook receiver at this address")
            if request.method != "POST":
                raise MethodNotAllowedError(f"{request.method} is not served here: use POST")
            with acting_for(tenant):
                response = await self._receive(request, webhooks, receiver)
        except RequestRefusedError as exc:
            response = refusal(exc)
        await response(scope, receive, send)

    async def _receive(
        self, request: Request, webhooks: Webhooks, receiver: Receiver
    ) -> JSONResponse:
        body = await read_body(request)
        url = called_url(request)
        if self.provider is Provider.BIRD:
            if not _bird_signed(request, receiver, url, body, webhooks.clock()):
                raise self._refused(receiver)
            notice = bird_notice(body)
        else:
            params = _form(request.headers, body)
            if not _laml_signed(request.headers, self.provider, receiver, url, params, body):
                raise self._refused(receiver)
            notice = laml_notice(self.provider, params, receiver.account)
        if isinstance(notice, Ignored):
            logger.info("webhook from %s ignored: %s", self.provider.value, notice.reason)
            return outcome("ignored")
        if webhooks.full:
            raise WebhooksBusyError("too many webhook deliveries are being worked on; retry")
        job = Job(receiver.tenant, notice, receiver.recordings, request.state.events, webhooks.seen)
        if not await webhooks.seen.claim(*job.delivery):
            return outcome("duplicate")
        webhooks.start(job)
        return outcome("accepted")

    def _refused(self, receiver: Receiver) -> WebhookSignatureError:
        logger.warning(
            "webhook refused: the %s signature is missing or wrong (tenant %s)",
            self.provider.value,
            receiver.tenant,
        )
        return WebhookSignatureError("the webhook signature is missing or does not match")


def _laml_signed(
    headers: Headers,
    provider: Provider,
    receiver: Receiver,
    url: str,
    params: list[tuple[str, str]],
    body: bytes,
) -> bool:
    """Twilio's scheme; SignalWire sends its own header and Twilio's."""
    names = ["x-twilio-signature"]
    if provider is Provider.SIGNALWIRE:
        names.insert(0, "x-signalwire-signature")
    signature = next((headers[name] for name in names if name in headers), None)
    if signature is None:
        return False
    return twilio_valid(str(receiver.key), url, params, signature, body)


def _bird_signed(request: Request, receiver: Receiver, url: str, body: bytes, now: float) -> bool:
    signature = request.headers.get("messagebird-signature")
    timestamp = request.headers.get("messagebird-request-timestamp")
    if signature is None or timestamp is None:
        return False
    return bird_valid(str(receiver.key), url, body, signature, timestamp, now)


def _form(headers: Headers, body: bytes) -> list[tuple[str, str]]:
    """The form's fields, in order (none for another content type: Twilio then signs the URL
    alone). Bytes that are not UTF-8 are replaced: the signature then fails."""
    if headers.get("content-type", "").split(";")[0].strip().lower() != _FORM:
        return []
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


def called_url(request: Request) -> str:
    """The URL the provider called: the public URL + the path and query, when set."""
    public: str | None = request.state.settings.public_url
    if public is None:
        return str(request.url)
    root = request.scope.get("root_path", "")
    path = request.url.path
    if root and path.startswith(root):
        path = path[len(root) :]
    query = request.url.query
    return f"{public.rstrip('/')}{path}" + (f"?{query}" if query else "")


async def read_body(request: Request) -> bytes:
    """The body, refused (413) past ``MAX_BODY_BYTES`` without reading it all."""
    too_large = PayloadTooLargeError(f"the body is larger than {MAX_BODY_BYTES} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:
        raise BadRequestError("the client went away before sending the whole body") from None
    return b"".join(chunks)


def outcome(what: str) -> JSONResponse:
    return JSONResponse({"outcome": what}, headers={"cache-control": "no-store"})


def refusal(exc: RequestRefusedError) -> JSONResponse:
    headers = {"cache-control": "no-store"}
    if isinstance(exc, MethodNotAllowedError):
        headers["allow"] = "POST"
    if isinstance(exc, WebhooksBusyError):
        headers["retry-after"] = str(BUSY_RETRY_AFTER)
    body = {"error": {"code": exc.code, "message": exc.message}}
    return JSONResponse(body, status_code=exc.status, headers=headers)
