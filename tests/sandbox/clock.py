"""The sandbox's clock, moved by hand: the lifecycle and callback tests step it."""

from __future__ import annotations

from datetime import UTC, datetime

#: Where a hand-moved clock starts.
START = datetime(2026, 5, 4, 9, 30, 0, tzinfo=UTC)


class Clock:
    """A clock for ``Sandbox.clock``: it says ``now``, which a test moves."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now
