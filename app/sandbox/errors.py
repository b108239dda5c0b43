"""Error bodies exactly as each provider sends them (JSON for the APIs, XML for S3)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from xml.sax.saxutils import escape

from starlette.responses import JSONResponse, Response

TWILIO_MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
SIGNALWIRE_MORE_INFO = "https://signalwire.com/docs/compatibility-api/reference/errors"

#: Twilio-style code and message for an HTTP status (SignalWire reuses Twilio's codes).
COMPAT_CODES = {
    400: (20001, "Bad Request"),
    401: (20003, "Authenticate"),
    403: (20403, "Forbidden"),
    404: (20404, "The requested resource was not found"),
    405: (20004, "Method not allowed"),
    429: (20429, "Too Many Requests"),
    500: (20500, "An internal server error has occurred"),
    503: (20503, "Service unavailable"),
}
BIRD_CODES = {
    400: ("BadRequest", "The request is malformed"),
    401: ("Unauthorized", "Missing or invalid access key"),
    403: ("Forbidden", "You do not have access to this resource"),
    404: ("NotFound", "The requested resource was not found"),
    409: ("Conflict", "The resource was modified concurrently"),
    422: ("InvalidPayload", "The request payload is invalid"),
    429: ("TooManyRequests", "Too many requests, slow down"),
    500: ("InternalServerError", "An internal server error occurred"),
}
S3_CODES = {
    400: ("InvalidRequest", "Invalid Request"),
    403: ("AccessDenied", "Access Denied"),
    404: ("NoSuchKey", "The specified key does not exist."),
    429: ("SlowDown", "Please reduce your request rate."),
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def compat_code(status: int) -> tuple[int, str]:
    """Twilio's (code, message) for a status, falling back by status class."""
    if status in COMPAT_CODES:
        return COMPAT_CODES[status]
    return COMPAT_CODES[500] if status >= 500 else COMPAT_CODES[400]


def compat_body(provider: str, status: int, code: int, message: str) -> dict[str, object]:
    """`{code, message, more_info, status}` in Twilio's or SignalWire's flavour."""
    if provider == "twilio":
        more_info = TWILIO_MORE_INFO.format(code=code)
    else:
        more_info = SIGNALWIRE_MORE_INFO
    return {"code": code, "message": message, "more_info": more_info, "status": status}


def compat_error(
    provider: str,
    status: int,
    *,
    code: int | None = None,
    message: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A Twilio/SignalWire error response; code and message default from the status."""
    default_code, default_message = compat_code(status)
    body = compat_body(provider, status, code or default_code, message or default_message)
    return JSONResponse(body, status_code=status, headers=headers)


def bird_code(status: int) -> tuple[str, str]:
    """Bird's (code, message) for a status, falling back by status class."""
    if status in BIRD_CODES:
        return BIRD_CODES[status]
    return BIRD_CODES[500] if status >= 500 else BIRD_CODES[400]


def bird_error(
    status: int,
    *,
    message: str | None = None,
    details: Mapping[str, list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """`{"code": "<String>", "message": ..., "details"?: {field: [messages]}}`."""
    code, default_message = bird_code(status)
    body: dict[str, object] = {"code": code, "message": message or default_message}
    if details is not None:
        body["details"] = dict(details)
    return JSONResponse(body, status_code=status, headers=headers)


def s3_xml(
    status: int, *, code: str | None = None, message: str | None = None, **extra: str
) -> bytes:
    """`<Error><Code>..</Code><Message>..</Message>...<RequestId/><HostId/></Error>`."""
    default_code, default_message = S3_CODES.get(status, S3_CODES[500 if status >= 500 else 400])
    fields = {"Code": code or default_code, "Message": message or default_message, **extra}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    fields["RequestId"] = digest[:16].upper()
    fields["HostId"] = digest[16:]
    inner = "".join(f"<{key}>{escape(value)}</{key}>" for key, value in fields.items())
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<Error>{inner}</Error>'.encode()


def s3_error(
    status: int, *, code: str | None = None, message: str | None = None, **extra: str
) -> Response:
    """An S3 error response (application/xml)."""
    body = s3_xml(status, code=code, message=message, **extra)
    return Response(body, status_code=status, media_type="application/xml")


def fault_body(provider: str, status: int) -> tuple[bytes, str]:
    """The body a provider sends with `status` when the sandbox injects a fault."""
    if provider == "s3":
        return s3_xml(status), "application/xml"
    if provider == "bird":
        code, message = bird_code(status)
        payload: dict[str, object] = {"code": code, "message": message}
    else:
        payload = compat_body(provider, status, *compat_code(status))
    return json.dumps(payload).encode(), "application/json"
