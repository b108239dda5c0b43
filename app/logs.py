"""Log lines name the tenant a request acts for.

The gate (``app.access.gate``) sets ``TENANT`` once it knows the caller; everything logged
while that request runs, in its task or in tasks it starts, then carries ``%(tenant)s``.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

#: The tenant of the request being served ("-" outside any request).
TENANT: ContextVar[str] = ContextVar("tenant", default="-")

FORMAT = "%(levelname)s %(name)s [tenant=%(tenant)s]: %(message)s"


class TenantFilter(logging.Filter):
    """Adds ``tenant`` to every record that passes through a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.tenant = TENANT.get()
        return True


def configure() -> None:
    """The CLI's logging: INFO to stderr, each line naming its tenant."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(TenantFilter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
