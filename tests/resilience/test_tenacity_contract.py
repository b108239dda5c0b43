"""What ``app.resilience.guard`` relies on in tenacity (``tenacity>=9,<10``): a version that
changes any of it fails here, by name."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

pytestmark = pytest.mark.anyio


def state(attempt: int) -> RetryCallState:
    retry_state = RetryCallState(AsyncRetrying(), None, (), {})
    retry_state.attempt_number = attempt
    return retry_state


def test_wait_random_exponential_is_full_jitter_under_a_doubling_bound() -> None:
    wait = wait_random_exponential(multiplier=0.1, max=2.0)
    for attempt, bound in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 2.0), (9, 2.0)):
        waits = [wait(state(attempt)) for _ in range(200)]
        assert all(0 <= w <= bound for w in waits)
        assert min(waits) < bound / 4 and max(waits) > bound * 3 / 4  # uniform from zero


async def attempts_of(
    fails: int, *, stop: object, sleeps: list[float] | None, wait: float = 0.0
) -> tuple[int, BaseException | None]:
    """Attempts made of a call failing ``fails`` times; ``sleeps`` records the waits instead
    of sleeping them (None: really asleep)."""
    calls = 0

    async def call() -> str:
        nonlocal calls
        calls += 1
        if calls <= fails:
            raise ConnectionError(calls)
        return "ok"

    async def sleep(seconds: float) -> None:
        assert sleeps is not None
        sleeps.append(seconds)

    retrying = AsyncRetrying(
        stop=stop,  # type: ignore[arg-type]
        wait=lambda _: wait,
        retry=retry_if_exception(lambda exc: isinstance(exc, ConnectionError)),
        sleep=asyncio.sleep if sleeps is None else sleep,
        reraise=True,
    )
    try:
        await retrying(call)
    except ConnectionError as exc:
        return calls, exc
    return calls, None


async def test_reraise_gives_the_last_attempts_own_exception() -> None:
    calls, error = await attempts_of(5, stop=stop_after_attempt(3), sleeps=[])
    assert calls == 3
    assert isinstance(error, ConnectionError) and error.args == (3,)


async def test_the_sleep_given_is_the_one_awaited_between_attempts() -> None:
    sleeps: list[float] = []
    calls, error = await attempts_of(2, stop=stop_after_attempt(3), sleeps=sleeps, wait=0.25)
    assert (calls, error) == (3, None)
    assert sleeps == [0.25, 0.25]


async def test_stop_before_delay_counts_the_coming_wait() -> None:
    """No retry starts whose wait would end past the delay: the guard's calls never sleep
    beyond their deadline."""
    calls, error = await attempts_of(
        5, stop=stop_after_attempt(5) | stop_before_delay(0.5), sleeps=None, wait=0.3
    )
    # At 0 s a 0.3 s wait ends before 0.5 s: retried; at 0.3 s, the next would end at 0.6 s.
    assert calls == 2 and isinstance(error, ConnectionError)


async def test_a_plain_callables_coroutine_is_not_awaited() -> None:
    """Why the guard hands tenacity an ``async def``: a lambda's coroutine comes back as is."""
    made: list[Awaitable[str]] = []

    async def work() -> str:
        return "done"

    def plain() -> Awaitable[str]:
        made.append(work())
        return made[-1]

    call: Callable[[], Awaitable[str]] = plain
    result: object = await AsyncRetrying(stop=stop_after_attempt(1))(call)
    assert asyncio.iscoroutine(result), "tenacity now awaits plain callables: simplify the guard"
    assert asyncio.iscoroutine(result) and await result == "done"
