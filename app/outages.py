"""An outage of a backing service (the cache's or the rate limiter's Redis), logged twice:
once when it starts and once when it ends, however many calls fail in between."""

from __future__ import annotations

import logging


class Outage:
    """Tracks whether a service is failing; logs only the changes, with the error's type
    (never its text, which may hold an address or a password)."""

    def __init__(self, logger: logging.Logger, down: str, back: str) -> None:
        self._logger = logger
        self._down = down
        self._back = back
        self.healthy = True

    def failed(self, exc: BaseException) -> None:
        if self.healthy:
            self.healthy = False
            self._logger.warning(self._down, type(exc).__name__)

    def succeeded(self) -> None:
        if not self.healthy:
            self.healthy = True
            self._logger.warning(self._back)
