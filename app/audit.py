"""The audit log: one INFO line for each action that changes a tenant's data (a deletion).

Lines go to the ``app.audit`` logger, so an operator can route them apart (their own handler,
file and retention) from the gateway's other lines. A line is the action, then ``key=value``
fields in a fixed order: the tenant, the caller (``Principal.caller``: an API key's id or a
JWT's subject, never a credential), what was acted on, the request id (``X-Request-ID``, as
every log line of the request names it) and the outcome. A value outside a plain set of
characters is written as a JSON string (quoted, escaped, cut at 128 characters), so that no
text a client chose (an id that is not one, a token's subject) can forge a field or a line.
The fields also ride on the record as ``record.audit`` (a dict), for structured handlers.
"""

from __future__ import annotations

import json
import logging
import re

logger = logging.getLogger("app.audit")

#: What a value may be made of to be written as it is.
_PLAIN = re.compile(r"[A-Za-z0-9._:@/+-]{1,128}")
#: The longest value written (a longer one is cut).
MAX_VALUE = 128


def audit(action: str, **fields: str) -> None:
    """Log one audit line: ``action`` and ``fields`` in the order given."""
    line = " ".join(f"{name}={quoted(value)}" for name, value in fields.items())
    logger.info("%s %s", action, line, extra={"audit": {"action": action, **fields}})


def quoted(value: str) -> str:
    """``value`` as it is when plain, else as a JSON string (see the module docstring)."""
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value[:MAX_VALUE])
