"""Recordings that live: created, moved through their provider's states on a clock, called back.

Each tick (`Lifecycle.advance`), every live recording whose time has come moves one status on,
and each account that records fewer than `LIVE_PER_ACCOUNT` recordings may start a new one
(always, when it has none). The paths are each provider's own:

- Twilio: `in-progress` -> `processing` -> `completed`; a few `in-progress` -> `absent`.
- SignalWire: `queued` -> `in-progress` -> `completed`; a few end `absent` instead.
- Bird: `accepted` -> `ongoing` -> `completed` -> `available`; a few end `absent` after
  `ongoing`, or `failed` after `completed`.

A recording stays in progress for 1 to 3 ticks and every other status for one. Times come from
the sandbox's clock (`Sandbox.clock`): `started` when it starts, `ended` when it stops, the
duration is the time between (at least 1 s) and, once completed, Twilio and SignalWire
price it per started minute. The dataset is updated at once, so the APIs serve the new state.

`step()` is one tick with its callbacks delivered (awaited): what tests call. `running()` is the
clock for the demo and the CLI: a task that ticks every `SandboxConfig.lifecycle_interval`
seconds and sends each tick's callbacks in the background (a slow receiver never holds the
clock). Per account, only the newest `KEEP_PER_ACCOUNT` recordings the lifecycle made are kept
(the oldest finished ones are deleted), so a demo that runs for days stays small.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from app.sandbox.callbacks import Callback, callback_for, notifies
from app.sandbox.config import PROVIDERS
from app.sandbox.data import SandboxRecording
from app.sandbox.seeding import (
    BIRD_ORIGINS,
    CALL_SOURCES,
    CONFERENCE_SOURCES,
    NUMBERS,
    PRICE_PER_MINUTE,
)

if TYPE_CHECKING:
    from app.sandbox.state import Sandbox

logger = logging.getLogger("app.sandbox.lifecycle")

Path = tuple[str, ...]
#: Per provider: the usual path first, then the ways a recording fails.
PATHS: dict[str, tuple[Path, ...]] = {
    "twilio": (("in-progress", "processing", "completed"), ("in-progress", "absent")),
    "signalwire": (
        ("queued", "in-progress", "completed"),
        ("queued", "in-progress", "absent"),
    ),
    "bird": (
        ("accepted", "ongoing", "completed", "available"),
        ("accepted", "ongoing", "absent"),
        ("accepted", "ongoing", "completed", "failed"),
    ),
}
#: Statuses during which the audio is being captured (they last 1 to 3 ticks).
CAPTURING = frozenset({"in-progress", "ongoing"})
FAILURE_SHARE = 0.15
CONFERENCE_SHARE = 0.2
LIVE_PER_ACCOUNT = 2
KEEP_PER_ACCOUNT = 200
#: Twilio's error codes of an absent recording: too short (16101), silent (16102).
ABSENT_ERROR_CODES = (16101, 16102)


@dataclass(slots=True)
class _Live:
    """Where a live recording is on its path, and for how many more ticks it stays."""

    path: Path
    index: int
    ticks_left: int

    @property
    def status(self) -> str:
        return self.path[self.index]


class Lifecycle:
    """The clock of one sandbox's recordings (see the module's doc)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.rng = random.Random(f"{sandbox.config.seed}:lifecycle")
        self.ticks = 0
        self._live: dict[tuple[str, str], _Live] = {}
        self._made: dict[tuple[str, str], deque[str]] = {}
        self._deliveries: set[asyncio.Task[list[bool]]] = set()

    # --- the state machine ---------------------------------------------------------------------

    def advance(self) -> list[SandboxRecording]:
        """One tick: the records that changed or were created, in their new state."""
        now = self.sandbox.now()
        changed = [*self._move_live(now), *self._start_new(now)]
        self.ticks += 1
        return changed

    def live(self, provider: str) -> list[SandboxRecording]:
        """The recordings of `provider` that have not reached the end of their path."""
        found = (self.sandbox.dataset.get(p, rid) for p, rid in self._live if p == provider)
        return [record for record in found if record is not None]

    def _move_live(self, now: datetime) -> Iterable[SandboxRecording]:
        dataset = self.sandbox.dataset
        for key, live in list(self._live.items()):
            live.ticks_left -= 1
            if live.ticks_left > 0:
                continue
            record = dataset.get(*key)
            if record is None or record.status != live.status:  # deleted through the API
                del self._live[key]
                continue
            live.index += 1
            moved = dataset.put(self._moved(record, live.status, now))
            if live.index == len(live.path) - 1:
                del self._live[key]
            else:
                live.ticks_left = self._hold(live.status)
            yield moved

    def _start_new(self, now: datetime) -> Iterable[SandboxRecording]:
        for provider in PROVIDERS:
            for account in self.sandbox.accounts(provider):
                running = sum(
                    1
                    for (p, rid) in self._live
                    if p == provider and self._owner(p, rid) == account.account
                )
                if running >= LIVE_PER_ACCOUNT or (running and self.rng.random() < 0.5):
                    continue
                yield self._start(provider, account.account, now)

    def _owner(self, provider: str, recording_id: str) -> str | None:
        record = self.sandbox.dataset.get(provider, recording_id)
        return None if record is None else record.account

    def _start(self, provider: str, account: str, now: datetime) -> SandboxRecording:
        paths = PATHS[provider]
        path = paths[0] if self.rng.random() >= FAILURE_SHARE else self.rng.choice(paths[1:])
        record = self.sandbox.dataset.put(self._new_record(provider, account, path[0], now))
        self._live[(provider, record.id)] = _Live(path, 0, self._hold(path[0]))
        made = self._made.setdefault((provider, account), deque())
        made.append(record.id)
        while len(made) > KEEP_PER_ACCOUNT:
            self.sandbox.dataset.delete(provider, made.popleft())
        return record

    def _hold(self, status: str) -> int:
        return self.rng.randint(1, 3) if status in CAPTURING else 1

    def _moved(self, record: SandboxRecording, status: str, now: datetime) -> SandboxRecording:
        """`record` at `status`, its times, duration, price and error as the provider sets them."""
        moved = replace(record, status=status, updated=now)
        if status in CAPTURING:
            return replace(moved, started=record.started or now)
        if record.running:  # it stops now
            started = record.started or now
            seconds = max(1, round((now - started).total_seconds()))
            moved = replace(moved, started=started, ended=now, duration=seconds)
        if status == "absent":
            code = self.rng.choice(ABSENT_ERROR_CODES) if record.provider != "bird" else None
            return replace(moved, duration=0, error_code=code)
        if status == "completed" and record.provider != "bird":
            minutes = math.ceil(moved.duration / 60)
            return replace(moved, price=PRICE_PER_MINUTE * minutes)
        return moved

    def _new_record(
        self, provider: str, account: str, status: str, now: datetime
    ) -> SandboxRecording:
        rng = self.rng
        conference = rng.random() < CONFERENCE_SHARE
        sources = CONFERENCE_SOURCES if conference else CALL_SOURCES
        call_id: str | None = self._id(provider, "CA")
        if conference and provider == "signalwire":
            call_id = None  # SignalWire: "Null if this is a conference recording."
        originator, receiver = rng.sample(NUMBERS, 2)
        return SandboxRecording(
            provider=provider,
            id=self._id(provider, "RE"),
            account=account,
            status=status,
            source=rng.choice(sources[provider]),
            created=now,
            updated=now,
            started=now if status in CAPTURING else None,
            ended=None,
            duration=0,
            channels=rng.choice((1, 2)),
            call_id=call_id,
            conference_id=self._id(provider, "CF") if conference else None,
            direction=rng.choice(("incoming", "outgoing")),
            originator=originator,
            receiver=receiver,
            origin=rng.choice(BIRD_ORIGINS) if provider == "bird" else None,
            channel_id=self._uuid() if provider == "bird" else None,
            trim=rng.choice(("do-not-trim", "trim-silence")),
        )

    def _id(self, provider: str, twilio_prefix: str) -> str:
        if provider == "twilio":
            return f"{twilio_prefix}{self.rng.getrandbits(128):032x}"
        return self._uuid()

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- callbacks -----------------------------------------------------------------------------

    def callbacks_for(self, records: Iterable[SandboxRecording]) -> list[Callback]:
        """The callbacks the providers send for these changes (to the accounts' URLs)."""
        sandbox = self.sandbox
        callbacks: list[Callback] = []
        for record in records:
            url = sandbox.callback_url(record.provider, record.account)
            if url is None or not notifies(record.provider, record.status):
                continue
            account = sandbox.account_of(record.provider, record.account)
            callbacks.append(callback_for(record, account, url, sandbox.public_url))
        return callbacks

    async def step(self) -> list[SandboxRecording]:
        """One tick, its callbacks delivered before it returns: what changed."""
        changed = self.advance()
        await self.sandbox.courier.deliver_all(self.callbacks_for(changed))
        return changed

    # --- the clock -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Tick every `lifecycle_interval` seconds until the block ends (0: never)."""
        interval = self.sandbox.config.lifecycle_interval
        if interval <= 0:
            yield
            return
        ticking = asyncio.create_task(self._tick_forever(interval))
        try:
            yield
        finally:
            ticking.cancel()
            for delivery in list(self._deliveries):
                delivery.cancel()
            await asyncio.gather(ticking, *self._deliveries, return_exceptions=True)

    async def _tick_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                callbacks = self.callbacks_for(self.advance())
            except Exception:  # a bug here must not stop the demo's clock
                logger.exception("the sandbox's lifecycle tick failed")
                continue
            delivery = asyncio.create_task(self.sandbox.courier.deliver_all(callbacks))
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)


class LifecycleMiddleware:
    """Runs a sandbox's lifecycle clock (`Lifecycle.running`) while the app it wraps runs.

    It wraps the ASGI lifespan: the sandbox app's own, when it is served alone, or the
    gateway's in demo mode (a mounted app gets no lifespan of its own).
    """

    def __init__(self, app: ASGIApp, lifecycle: Lifecycle) -> None:
        self.app = app
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        async with self.lifecycle.running():
            await self.app(scope, receive, send)
