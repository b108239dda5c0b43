"""The webhook receivers' refusals: each a ``RequestRefusedError`` with its HTTP status.

    RequestRefusedError (app.errors)
    ├── NoReceiverError         NOT_FOUND                  -> 404 (unknown tenant, or no key)
    ├── WebhookSignatureError   WEBHOOK_SIGNATURE_INVALID  -> 403
    └── WebhooksBusyError       WEBHOOKS_BUSY              -> 503 (+ Retry-After)

Besides them the receivers answer ``PayloadTooLargeError`` (413), ``MethodNotAllowedError``
(405) and ``BadRequestError`` (400, a client gone before its body came) from ``app.errors``.
"""

from __future__ import annotations

from app.errors import RequestRefusedError


class NoReceiverError(RequestRefusedError):
    """No receiver at this URL: the tenant is unknown, or its provider has no signing key
    (one answer for both: the URL tells nobody which tenants exist)."""

    code = "NOT_FOUND"
    status = 404


class WebhookSignatureError(RequestRefusedError):
    """The delivery's signature is missing, malformed, stale (Bird) or not the provider's."""

    code = "WEBHOOK_SIGNATURE_INVALID"
    status = 403


class WebhooksBusyError(RequestRefusedError):
    """As many deliveries are being worked on as ``GATEWAY_WEBHOOK_MAX_PENDING`` allows."""

    code = "WEBHOOKS_BUSY"
    status = 503
