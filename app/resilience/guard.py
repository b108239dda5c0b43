"""``CallGuard``: one provider account's breaker, deadline, retries and retry budget.

See ``app.resilience`` for the order they apply in. What is retried: an idempotent call
(a GET; a DELETE, whose retry's 404 ``HttpProvider.delete`` reads right) that failed in a way
a second try may not, marked by the adapter as ``ProviderError.transient`` (a connection error
or reset, a timeout, HTTP 502, 503, 504 or 429), at most ``attempts`` times in all, with
exponential backoff and full jitter
between them (``wait_random_exponential``: a uniform wait up to 0.1 s, 0.2 s, 0.4 s...), or the
provider's ``Retry-After`` when it gave one no longer than ``retry_after_max`` (a longer one
is not retried: the caller gets PROVIDER_RATE_LIMITED with ``retryAfter``). No retry starts
that would end after the call's deadline (``stop_before_delay``): the last error is then
what the caller gets. A 500 is not retried: it is a bug on the provider's side, not a blip.

The guard is all that knows about tenacity: ``tests/resilience/`` names what it relies on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from app import metrics, tracing
from app.errors import GatewayError, ProviderError, ProviderUnavailableError
from app.models import Provider
from app.resilience import deadline
from app.resilience.breaker import COOLDOWN, FAILURES, Breaker, BreakerState
from app.resilience.budget import RetryBudget

T = TypeVar("T")

log = logging.getLogger(__name__)

#: The first retry waits up to this many seconds; each next one up to twice as long.
BACKOFF = 0.1
#: No backoff wait is longer than this.
BACKOFF_MAX = 2.0


@dataclass(frozen=True)
class Resilience:
    """The settings every guard of a gateway shares (``Settings.resilience``)."""

    #: Seconds one call may take, start to last byte (``GATEWAY_UPSTREAM_TIMEOUT``).
    timeout: float = 10.0
    #: Attempts in all, the first included (``GATEWAY_RETRY_ATTEMPTS``; 1: no retry).
    attempts: int = 3
    #: The longest ``Retry-After`` waited for (``GATEWAY_RETRY_AFTER_MAX``).
    retry_after_max: float = 2.0
    #: Consecutive failures that open the breaker (``GATEWAY_BREAKER_FAILURES``).
    breaker_failures: int = FAILURES
    #: Seconds the breaker stays open (``GATEWAY_BREAKER_COOLDOWN``).
    breaker_cooldown: float = COOLDOWN


class CallGuard:
    """Guards the calls of one provider account (one per adapter)."""

    def __init__(
        self,
        provider: Provider,
        label: str,
        resilience: Resilience | None = None,
        *,
        tenant: str = "default",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.label = label
        self.settings = settings = resilience or Resilience()
        self._sleep = sleep
        state = metrics.BREAKER_STATE.labels(tenant, provider.name)
        state.set(BreakerState.CLOSED)
        self.breaker = Breaker(
            failures=settings.breaker_failures,
            cooldown=settings.breaker_cooldown,
            clock=clock,
            on_change=state.set,
        )
        self.budget = RetryBudget(clock=clock)
        self._rejected = metrics.BREAKER_REJECTED.labels(tenant, provider.name)
        self._duration = metrics.UPSTREAM_DURATION.labels(provider.name)
        self._exhausted = metrics.RETRY_BUDGET_EXHAUSTED.labels(provider.name)

    async def call(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        status_of: Callable[[T], int] | None = None,
        method: str = "GET",
    ) -> T:
        """``attempt()``'s result, attempted again on transient failures, within the deadline;
        every failure a ``GatewayError``. Traced as one upstream span (``app.tracing``) of
        the HTTP ``method``, with the answer's HTTP status (``status_of`` reads it off the
        result; an error's own) and the number of retries."""
        with tracing.upstream_span(self.provider.value, method) as span:
            tries = [0]
            try:
                result = await self._call(attempt, tries)
            except ProviderError as exc:
                if exc.status is not None:
                    span.set(tracing.STATUS_CODE, exc.status)
                raise
            finally:
                span.set(tracing.RETRY_COUNT, max(0, tries[0] - 1))
            if status_of is not None:
                span.set(tracing.STATUS_CODE, status_of(result))
            return result

    async def _call(self, attempt: Callable[[], Awaitable[T]], tries: list[int]) -> T:
        if not self.breaker.allow():
            self._rejected.inc()
            raise ProviderUnavailableError(
                f"{self.label} is failing: the gateway stopped calling it for "
                f"{self.settings.breaker_cooldown:g} s after {self.breaker.failures} "
                f"consecutive failures (next try in {self.breaker.retry_in():.1f} s)",
                provider=self.provider,
            )
        self.budget.called()
        own = self.settings.timeout
        request = deadline.current()
        timeout = own if request is None else min(own, request.remaining())
        started = time.monotonic()
        try:
            if timeout <= 0:
                raise TimeoutError
            async with asyncio.timeout(timeout):
                result = await self._attempts(attempt, timeout, tries)
        except TimeoutError:
            if request is not None and timeout < own:  # the request's deadline, not the call's
                self.breaker.abandoned()
                raise ProviderUnavailableError(
                    f"the request's deadline ({request.seconds:g} s) passed before "
                    f"{self.label} answered",
                    provider=self.provider,
                ) from None
            self.breaker.failed()
            raise ProviderUnavailableError(
                f"{self.label} did not answer within {own:g} s", provider=self.provider
            ) from None
        except ProviderUnavailableError:
            self.breaker.failed()
            raise
        except GatewayError:
            self.breaker.succeeded()  # it answered: a 404, a 429 or a bad body is no outage
            raise
        except BaseException:
            self.breaker.abandoned()
            raise
        finally:
            self._duration.observe(time.monotonic() - started)
        self.breaker.succeeded()
        return result

    async def _attempts(
        self, attempt: Callable[[], Awaitable[T]], timeout: float, tries: list[int]
    ) -> T:
        """The first attempt on its own; tenacity's machinery only once it has failed.
        ``tries[0]`` counts the attempts made.

        Nearly every call succeeds at once, and building an ``AsyncRetrying`` for each (its
        strategies, its state, a check of the callable per attempt) cost ~25 µs of CPU per
        call: 2.5 ms of a 100-ref ``recordingsByRef``. A first failure is handed to tenacity as
        its first attempt's outcome (``replay``), so the attempt count, the backoff of each
        retry and what is retried are the same as if tenacity had made that attempt; its
        ``stop_before_delay`` counts from the call's start, as before.
        """
        started = time.monotonic()
        tries[0] += 1
        try:
            return await attempt()
        except Exception as exc:
            if self.settings.attempts <= 1:
                raise
            pending = [exc]  # popped, not kept in a local: no frame holds it once replayed
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.attempts)
            | stop_before_delay(timeout - (time.monotonic() - started)),
            wait=self._wait,
            retry=retry_if_exception(self._worth_retrying),
            before_sleep=self._retrying,
            sleep=self._sleep,
            reraise=True,
        )

        # tenacity awaits only what an ``async def`` returns (a plain callable's result, e.g.
        # a lambda's coroutine, is handed back unawaited): hence the coroutine function.
        async def replay() -> T:
            if pending:
                raise pending.pop()
            tries[0] += 1
            return await attempt()

        return await retrying(replay)

    def _worth_retrying(self, exc: BaseException) -> bool:
        if not isinstance(exc, ProviderError) or exc.transient is None:
            return False
        if exc.retry_after is not None and exc.retry_after > self.settings.retry_after_max:
            return False
        if not self.budget.can_retry():
            self._exhausted.inc()
            return False
        return True

    _backoff = wait_random_exponential(multiplier=BACKOFF, max=BACKOFF_MAX)

    def _wait(self, state: RetryCallState) -> float:
        """The provider's ``Retry-After`` when it gave one, else backoff with full jitter."""
        assert state.outcome is not None
        exc = state.outcome.exception()
        if isinstance(exc, ProviderError) and exc.retry_after is not None:
            return float(exc.retry_after)
        return self._backoff(state)

    def _retrying(self, state: RetryCallState) -> None:
        assert state.outcome is not None
        exc = state.outcome.exception()
        reason = exc.transient if isinstance(exc, ProviderError) else None
        self.budget.retried()
        metrics.UPSTREAM_RETRIES.labels(self.provider.name, reason or "other").inc()
        log.debug(
            "%s: retrying after %s (attempt %d)", self.label, reason, state.attempt_number + 1
        )
