"""The breaker's state machine and the retry budget's window, on a hand-turned clock."""

from __future__ import annotations

from app.resilience import Breaker, BreakerState, RetryBudget


def state(breaker: Breaker) -> BreakerState:
    """The breaker's state, read afresh (each call may change it)."""
    return breaker.state


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_only() -> None:
    clock = Clock()
    breaker = Breaker(failures=3, cooldown=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert breaker.allow()
    breaker.succeeded()  # an answer resets the count
    for _ in range(2):
        assert breaker.allow()
        breaker.failed()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow()
    breaker.failed()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_in() == 10


def test_after_the_cooldown_one_probe_goes_through_and_decides() -> None:
    clock = Clock()
    states: list[BreakerState] = []
    breaker = Breaker(failures=1, cooldown=10, clock=clock, on_change=states.append)
    breaker.allow()
    breaker.failed()
    clock.now += 9.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()  # the probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert not breaker.allow(), "only one probe at a time"
    breaker.failed()  # the probe failed: open for another cool-down
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.succeeded()
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.allow() and breaker.allow()
    assert states == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_a_cancelled_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    breaker = Breaker(failures=1, cooldown=1, clock=clock)
    breaker.allow()
    breaker.failed()
    clock.now += 1
    assert breaker.allow()
    breaker.abandoned()
    assert breaker.allow()


def test_retries_stay_within_a_fifth_of_the_calls_plus_the_floor() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=3, window=10, clock=clock)
    retries = 0
    for _ in range(100):
        budget.called()
        if budget.can_retry():
            budget.retried()
            retries += 1
    assert retries == 0.2 * 100 + 3
    assert not budget.can_retry()


def test_the_budget_forgets_what_left_the_window() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=0, window=10, clock=clock)
    for _ in range(10):
        budget.called()
    budget.retried()
    budget.retried()
    assert not budget.can_retry()
    clock.now += 9  # still inside the ten seconds
    assert not budget.can_retry()
    clock.now += 1  # the first second left the window: calls and retries with it
    assert budget.calls == 0 and budget.retries == 0
    budget.called()
    assert not budget.can_retry()  # 0.2 of one call is no whole retry
    for _ in range(4):
        budget.called()
    assert budget.can_retry()


def test_a_quiet_account_still_gets_its_floor_of_retries() -> None:
    clock = Clock()
    budget = RetryBudget(ratio=0.2, minimum=3, window=10, clock=clock)
    budget.called()
    for _ in range(3):
        assert budget.can_retry()
        budget.retried()
    assert not budget.can_retry()
    clock.now += 100  # long after: the window is empty again
    assert budget.can_retry()
