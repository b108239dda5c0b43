"""Log lines name the tenant a request acts for.

The gate (``app.access.gate``) sets ``TENANT`` once it knows the caller, and the media route
once it knows whose link it serves; everything logged while that request runs, in its task or
in tasks it starts, then carries ``%(tenant)s``: the gateway's own lines and uvicorn's access
log alike (``uvicorn_config``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import uvicorn.config

#: The tenant of the request being served ("-" outside any request).
TENANT: ContextVar[str] = ContextVar("tenant", default="-")

FORMAT = "%(levelname)s %(name)s [tenant=%(tenant)s]: %(message)s"


class TenantFilter(logging.Filter):
    """Adds ``tenant`` to every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = TENANT.get()
        return True


@contextmanager
def acting_for(tenant: str) -> Iterator[None]:
    """Name ``tenant`` in the log lines of what runs inside."""
    token = TENANT.set(tenant)
    try:
        yield
    finally:
        TENANT.reset(token)


def uvicorn_config() -> dict[str, Any]:
    """uvicorn's logging configuration, with the tenant in its lines (access log included)."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["filters"] = {"tenant": {"()": TenantFilter}}
    for handler in config["handlers"].values():
        handler["filters"] = ["tenant"]
    for formatter in config["formatters"].values():
        formatter["fmt"] = formatter["fmt"].replace(
            "%(levelprefix)s ", "%(levelprefix)s [tenant=%(tenant)s] ", 1
        )
    return config


def configure() -> None:
    """The CLI's logging: INFO to stderr, each line naming its tenant."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TenantFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
