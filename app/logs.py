"""Log lines name the tenant a request acts for and the request itself.

The gate (``app.access.gate``) sets ``TENANT`` once it knows the caller, and the media route
once it knows whose link it serves; ``app.requestid`` sets ``REQUEST`` as each request
arrives. Everything logged while that request runs, in its task or in tasks it starts, then
carries ``%(tenant)s`` and ``%(request_id)s``: the gateway's own lines and uvicorn's, access
log included (``uvicorn_config``).

Two formats (``GATEWAY_LOG_FORMAT``): ``text``, one readable line per record, and ``json``,
one JSON object per line (``JsonFormatter``) for a log shipper; an access line's object also
has ``method``, ``path`` and ``status``.

Media links carry their credential in the path (``/media/<token>``): anyone reading a log
line with one could fetch the recording until the link expires, so the access log prints
``/media/<redacted>`` instead (``RedactMediaTokens``).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn.config

#: The tenant of the request being served ("-" outside any request).
TENANT: ContextVar[str] = ContextVar("tenant", default="-")

FORMAT = "%(levelname)s %(name)s [tenant=%(tenant)s] [request=%(request_id)s]: %(message)s"
FORMATS = ("text", "json")

#: What uvicorn logs when an app returns before finishing a response it started.
UNFINISHED = "ASGI callable returned without completing response."
#: uvicorn's message for an exception out of the app (tests/test_shutdown.py names both).
APP_EXCEPTION = "Exception in ASGI application\n"
SHUTDOWN_CUT = "the shutdown grace ended with this request still running: it was cut"
_MEDIA_TOKEN = re.compile(r"(/media/)[^/?#\s]+")


@dataclass
class RequestLog:
    """The request being served, as its log lines name it. ``cut`` is set by a route that
    ends a response early on purpose, once it has logged why (``app.media.proxy``)."""

    id: str
    cut: bool = False


#: The request being served (None outside any request).
REQUEST: ContextVar[RequestLog | None] = ContextVar("request", default=None)


def request_id() -> str:
    """The id of the request being served, "-" outside any request."""
    current = REQUEST.get()
    return current.id if current is not None else "-"


class TenantFilter(logging.Filter):
    """Adds ``tenant`` and ``request_id`` to every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = TENANT.get()
        record.request_id = request_id()
        return True


class RedactMediaTokens(logging.Filter):
    """On uvicorn's access log: the request line's ``/media/<token>`` becomes
    ``/media/<redacted>``. uvicorn logs the line with the args
    ``(client_addr, method, full_path, http_version, status_code)``
    (tests/test_logs.py checks that it still does)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact(args[2]), *args[3:])
        return True


def redact(path: str) -> str:
    """``path`` with any media token replaced by ``<redacted>``."""
    return _MEDIA_TOKEN.sub(r"\1<redacted>", path)


class QuietCut(logging.Filter):
    """On ``uvicorn.error``: drops uvicorn's "returned without completing response" for a
    response the gateway cut on purpose (a provider failing mid-stream): the route has
    logged it already, as one WARNING naming the provider. And a request still running when
    the shutdown grace ends (uvicorn cancels it and logs the ``CancelledError`` with its
    traceback as an ASGI exception) becomes one WARNING line, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == APP_EXCEPTION and record.exc_info:
            if isinstance(record.exc_info[1], asyncio.CancelledError):
                record.msg, record.args = SHUTDOWN_CUT, ()
                record.levelno, record.levelname = logging.WARNING, "WARNING"
                record.exc_info = record.exc_text = None
            return True
        current = REQUEST.get()
        return not (current is not None and current.cut and record.msg == UNFINISHED)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, tenant, request_id (and the
    traceback, if any); uvicorn's access lines add method, path and status. With ``pid``
    (several workers: ``app.cli``), the process id too."""

    def __init__(self, *, pid: bool = False) -> None:
        super().__init__()
        self.pid = pid

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "tenant": getattr(record, "tenant", "-"),
            "request_id": getattr(record, "request_id", "-"),
        }
        if self.pid:
            line["pid"] = record.process
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            line |= {"client": args[0], "method": args[1], "path": args[2], "status": args[4]}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


@contextmanager
def acting_for(tenant: str) -> Iterator[None]:
    """Name ``tenant`` in the log lines of what runs inside."""
    token = TENANT.set(tenant)
    try:
        yield
    finally:
        TENANT.reset(token)


def uvicorn_config(log_format: str = "text", *, pid: bool = False) -> dict[str, Any]:
    """uvicorn's logging configuration: tenant and request id in its lines (access log
    included), media tokens redacted from the access log, in ``log_format``; with ``pid``,
    the process id of the worker that logs."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {
        "tenant": {"()": TenantFilter},
        "redact": {"()": RedactMediaTokens},
        "quiet_cut": {"()": QuietCut},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["tenant"]
    if log_format == "json":
        for formatter in config["formatters"].values():
            formatter.clear()
            formatter["()"] = JsonFormatter
            formatter["pid"] = pid
    else:
        prefix = "[pid=%(process)d] " if pid else ""
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace(
                "%(levelprefix)s ",
                f"%(levelprefix)s {prefix}[tenant=%(tenant)s] [request=%(request_id)s] ",
                1,
            )
    config["loggers"]["uvicorn.access"]["filters"] = ["redact"]
    config["loggers"]["uvicorn.error"]["filters"] = ["quiet_cut"]
    return config


def configure(log_format: str = "text", *, pid: bool = False) -> None:
    """The CLI's logging: INFO to stderr, each line naming its tenant and request (and, with
    ``pid``, the process id of the worker that logs)."""
    handler = logging.StreamHandler()
    text = FORMAT.replace(" [tenant=", " [pid=%(process)d] [tenant=", 1) if pid else FORMAT
    handler.setFormatter(
        JsonFormatter(pid=pid) if log_format == "json" else logging.Formatter(text)
    )
    handler.addFilter(TenantFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
