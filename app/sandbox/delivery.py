"""Delivering the sandbox's callbacks as the providers do: POST, retry, give up, log.

A delivery that times out or cannot connect is retried after a delay that doubles
(`SandboxConfig.callback_backoff`, then twice that, ...), up to `SandboxConfig.callback_attempts`
attempts in all, and so is an answer the provider retries: for Twilio and SignalWire a 5xx or
429 (any other answer ends it), for Bird anything but a 2xx ("If Bird does not receive a 2xx
response from your webhook endpoint, it will automatically retry"). The providers retry for
longer (Bird for up to 8 hours); the sandbox keeps the same shape, bounded, so a demo pointed at
a dead URL holds nothing for long. Nothing here raises: a failing callback URL never reaches
the sandbox's API.

Every attempt is logged in `Sandbox.callbacks` (`SentCallback`), newest last, and at INFO
(WARNING when given up) on the `app.sandbox.callbacks` logger, without the signature.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
)

from app.sandbox.callbacks import Callback, without_userinfo

logger = logging.getLogger("app.sandbox.callbacks")

#: How many attempts the log keeps (the oldest are dropped beyond that).
CALLBACK_LOG_LIMIT = 10_000
RETRIED_STATUSES = frozenset({429})


@dataclass(frozen=True, slots=True)
class SentCallback:
    """One attempt at delivering a callback: what was sent, and what came of it.

    `status_code` is the receiver's answer, or None when there was none (`error` says why:
    the httpx exception's class name, e.g. `ConnectError`, `ReadTimeout`).
    """

    provider: str
    url: str
    recording_id: str
    status: str
    attempt: int
    headers: dict[str, str]
    body: bytes
    status_code: int | None
    error: str | None
    at: datetime

    @property
    def delivered(self) -> bool:
        """True when the receiver acknowledged it (2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300


def retryable(provider: str, answer: int) -> bool:
    """Whether `provider` tries again after the receiver answered `answer`."""
    if provider == "bird":
        return not 200 <= answer < 300
    return answer >= 500 or answer in RETRIED_STATUSES


class Courier:
    """Sends callbacks with retries and logs each attempt to `log`.

    `transport` replaces the network (None: real sockets).
    """

    def __init__(
        self,
        log: list[SentCallback],
        clock: Callable[[], datetime],
        *,
        attempts: int,
        backoff: float,
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.log = log
        self.clock = clock
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.transport = transport

    async def deliver_all(self, callbacks: Sequence[Callback]) -> list[bool]:
        """Deliver each (concurrently); per callback, whether it was acknowledged."""
        if not callbacks:
            return []
        async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as client:
            return list(await asyncio.gather(*(self.deliver(client, cb) for cb in callbacks)))

    async def deliver(self, client: httpx.AsyncClient, callback: Callback) -> bool:
        """One callback, retried as the module's doc says; True when acknowledged."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff, exp_base=2),
            retry=retry_if_exception_type(httpx.TransportError)
            | retry_if_result(lambda answer: retryable(callback.provider, answer)),
            retry_error_callback=_last_answer,
        )
        numbers = itertools.count(1)
        try:
            answer: int | None = await retrying(self._attempt, client, callback, numbers)
        except Exception:  # never let a callback break the sandbox
            logger.exception("callback to %s failed unexpectedly", without_userinfo(callback.url))
            return False
        delivered = answer is not None and 200 <= answer < 300
        if not delivered:
            logger.warning(
                "gave up on the %s callback for %s (%s) to %s",
                callback.provider,
                callback.recording_id,
                callback.status,
                without_userinfo(callback.url),
            )
        return delivered

    async def _attempt(
        self, client: httpx.AsyncClient, callback: Callback, numbers: Iterator[int]
    ) -> int:
        attempt = next(numbers)
        now = self.clock()
        headers = callback.headers(now)
        try:
            response = await client.post(callback.url, content=callback.body, headers=headers)
        except httpx.TransportError as exc:
            self._record(callback, attempt, headers, None, type(exc).__name__, now)
            raise
        self._record(callback, attempt, headers, response.status_code, None, now)
        return response.status_code

    def _record(
        self,
        callback: Callback,
        attempt: int,
        headers: dict[str, str],
        status_code: int | None,
        error: str | None,
        at: datetime,
    ) -> None:
        sent = SentCallback(
            callback.provider,
            callback.url,
            callback.recording_id,
            callback.status,
            attempt,
            headers,
            callback.body,
            status_code,
            error,
            at,
        )
        self.log.append(sent)
        if len(self.log) > CALLBACK_LOG_LIMIT:
            del self.log[: len(self.log) - CALLBACK_LOG_LIMIT]
        logger.info(
            "callback %s %s (%s) attempt %d to %s: %s",
            callback.provider,
            callback.recording_id,
            callback.status,
            attempt,
            without_userinfo(callback.url),
            status_code if status_code is not None else error,
        )


def _last_answer(state: RetryCallState) -> int | None:
    """What the last attempt came to once the retries are spent: its status, or None."""
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    answer: int = outcome.result()
    return answer
