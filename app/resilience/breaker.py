"""A circuit breaker per provider account.

Closed, it counts consecutive failures (a provider unreachable, timing out or answering 5xx;
an answer of any other kind, a 404 or a 429 included, resets the count: the provider is up).
At ``failures`` in a row it opens: for ``cooldown`` seconds every call fails at once, with no
request sent. Then it is half-open: one call goes through as a probe while the others still
fail at once; the probe's success closes it, its failure opens it for another cool-down.

Written here, not taken from a library: pybreaker's asyncio support goes through Tornado,
aiobreaker and circuitbreaker let every concurrent call through once the cool-down is over
(the burst a probe is meant to avoid); the state machine is short.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable

#: Consecutive failures that open the breaker (``GATEWAY_BREAKER_FAILURES``).
FAILURES = 5
#: Seconds it stays open before a probe (``GATEWAY_BREAKER_COOLDOWN``).
COOLDOWN = 10.0


class BreakerState(enum.IntEnum):
    """The values of the ``gateway_breaker_state`` gauge."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class Breaker:
    """One account's breaker; ``on_change`` hears each new state."""

    def __init__(
        self,
        *,
        failures: int = FAILURES,
        cooldown: float = COOLDOWN,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failures = failures
        self.cooldown = cooldown
        self._clock = clock
        self._on_change = on_change
        self.state = BreakerState.CLOSED
        self._failed = 0
        self._opened_at = 0.0
        self._probing = False

    def allow(self) -> bool:
        """Whether a call may go out now (if it is the probe, it is now in flight)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cooldown:
                return False
            self._set(BreakerState.HALF_OPEN)
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_in(self) -> float:
        """Seconds until a probe may go out (0 when it may now)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def succeeded(self) -> None:
        """The call got an answer from the provider."""
        self._failed = 0
        self._probing = False
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def failed(self) -> None:
        """The provider failed the call (unreachable, timed out, 5xx)."""
        self._probing = False
        self._failed += 1
        if self.state is BreakerState.HALF_OPEN or self._failed >= self.failures:
            self._opened_at = self._clock()
            if self.state is not BreakerState.OPEN:
                self._set(BreakerState.OPEN)

    def abandoned(self) -> None:
        """The call ended without a verdict (cancelled): a probe slot is given back."""
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(state)
