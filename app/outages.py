"""An outage of a backing service (the cache's, the rate limiter's or the persisted queries'
Redis): logged twice, once when it starts and once when it ends, however many calls fail in
between; and a breaker: after a failure the service is bypassed for ``cooldown`` seconds, so a
frozen Redis costs one timeout per cool-down, not one per request.

A user of its own may also be told of each change (``on_change``): the cache reports its
outages to the metrics that way, while the rate limiter and the persisted queries, which
share this class but have no metric of their own, pass nothing."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds a failed backing service is bypassed before it is tried again.
COOLDOWN = 5.0


class Outage:
    """Tracks whether a service is failing; logs only the changes, with the error's type
    (never its text, which may hold an address or a password), and calls ``on_change`` with
    the new state (``False``: an outage begins, ``True``: it is over) at each of them."""

    def __init__(
        self,
        logger: logging.Logger,
        down: str,
        back: str,
        *,
        cooldown: float = COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._logger = logger
        self._down = down
        self._back = back
        self._cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self._retry_at = 0.0
        self.healthy = True

    def available(self) -> bool:
        """Whether to call the service: it is healthy, or its cool-down is over (one call
        then probes it)."""
        if self.healthy:
            return True
        now = self._clock()
        if now < self._retry_at:
            return False
        self._retry_at = now + self._cooldown  # the calls racing this probe still bypass
        return True

    async def guard(self, call: Callable[[], Awaitable[T]], fallback: T) -> T:
        """``call()``'s result, or ``fallback`` when the service is bypassed or the call fails
        (any failure: a backing service never fails the request that uses it)."""
        if not self.available():
            return fallback
        try:
            result = await call()
        except Exception as exc:
            self.failed(exc)
            return fallback
        self.succeeded()
        return result

    def failed(self, exc: BaseException) -> None:
        self._retry_at = self._clock() + self._cooldown
        if self.healthy:
            self.healthy = False
            self._logger.warning(self._down, type(exc).__name__)
            if self._on_change is not None:
                self._on_change(False)

    def succeeded(self) -> None:
        if not self.healthy:
            self.healthy = True
            self._logger.warning(self._back)
            if self._on_change is not None:
                self._on_change(True)
