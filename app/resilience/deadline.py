"""The GraphQL request's deadline (``GATEWAY_REQUEST_TIMEOUT``), seen by every provider call
the request makes.

The view opens it (``request_deadline``) around the request's execution; it is a context
variable, so the loaders' batch tasks and the single-flight fetches started for the request
inherit it, and every ``CallGuard`` bounds its call by what is left of it. What has answered
when it passes is returned; each call still out fails with PROVIDER_UNAVAILABLE at its path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Deadline:
    """An instant on the monotonic clock, and the budget it was set from (for messages)."""

    at: float
    seconds: float

    def remaining(self) -> float:
        return self.at - time.monotonic()


_current: ContextVar[Deadline | None] = ContextVar("request_deadline", default=None)


@contextlib.contextmanager
def request_deadline(seconds: float) -> Iterator[Deadline]:
    """Bound the provider calls made inside the block (and the tasks it starts) to ``seconds``
    from now."""
    deadline = Deadline(time.monotonic() + seconds, seconds)
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def current() -> Deadline | None:
    """The deadline of the request being served, if any."""
    return _current.get()
