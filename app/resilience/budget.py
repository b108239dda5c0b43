"""A retry budget per provider account: retries stay a small share of the calls made.

Retries help when a few calls fail; when most fail, retrying them multiplies the load on a
provider that is already struggling. The budget allows retries while they stay under
``ratio`` (20%) of the calls begun in the last ``window`` (10 s), plus a small floor
(``minimum`` per window) so that a lone request on a quiet account may still be retried.

Written here, not taken from a library: neither tenacity nor stamina has a budget (their
limits are per call), and a sliding count over ten one-second buckets is a few lines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: Seconds the budget looks back over.
WINDOW = 10
#: Retries allowed as a share of the calls begun in the window.
RATIO = 0.2
#: Retries allowed per window whatever the traffic, so a quiet account still retries.
MINIMUM = 3


class RetryBudget:
    """Counts calls and retries in one-second buckets over the last ``window`` seconds."""

    def __init__(
        self,
        *,
        ratio: float = RATIO,
        minimum: int = MINIMUM,
        window: int = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratio = ratio
        self.minimum = minimum
        self._window = window
        self._clock = clock
        self._calls = [0] * window
        self._retries = [0] * window
        self._second = math.floor(clock())

    def _bucket(self) -> int:
        """The current second's bucket, emptying those that fell out of the window."""
        now = math.floor(self._clock())
        if now != self._second:
            for second in range(max(self._second + 1, now - self._window + 1), now + 1):
                index = second % self._window
                self._calls[index] = self._retries[index] = 0
            self._second = now
        return now % self._window

    def called(self) -> None:
        """A call begins (its first attempt)."""
        self._calls[self._bucket()] += 1

    def can_retry(self) -> bool:
        """Whether one more retry stays within the budget."""
        self._bucket()
        allowed = self.ratio * sum(self._calls) + self.minimum
        return sum(self._retries) + 1 <= allowed

    def retried(self) -> None:
        """A retry is made."""
        self._retries[self._bucket()] += 1

    @property
    def calls(self) -> int:
        self._bucket()
        return sum(self._calls)

    @property
    def retries(self) -> int:
        self._bucket()
        return sum(self._retries)
