"""The deterministic demo dataset: `build_dataset(config)`.

The recordings reach back `SPAN` from `config.anchor` (by default the start of the current UTC
day), so an analyst's "last 30 days" finds rows whenever the demo runs. Everything but the
times comes from `config.seed` alone: another day gives the same recordings under the same ids,
every time shifted by the days between the anchors. The newest recording is created `NEWEST`
before the anchor, so no time is ever in the future of the clock that chose the anchor.

Recordings whose status lasts minutes or hours (still running, or ended with the media not yet
ready: `TRANSIENT`) are the newest ones, within `RECENT` of the newest; the others spread over
the rest of the span. Twilio and SignalWire times are whole seconds, Bird's carry milliseconds,
as each provider's are.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.sandbox.config import PROVIDERS, SandboxConfig
from app.sandbox.data import (
    NOT_STARTED,
    READY_STATUS,
    STATUSES,
    TRANSIENT,
    Dataset,
    SandboxRecording,
)

#: How far the oldest recording lies before the anchor: inside "the last 90 days" of any
#: moment of the anchor's day.
SPAN = timedelta(days=88)
#: The newest recording is created this long before the anchor (a time of day that is not round).
NEWEST = timedelta(minutes=14, seconds=48)
#: The recordings in a `TRANSIENT` status are created within this long before the newest.
RECENT = timedelta(hours=3)
#: Bird's times carry milliseconds: its newest recording is created this much later.
BIRD_MILLIS = 234

CALL_SOURCES = {
    "twilio": ("DialVerb", "OutboundAPI", "Trunking", "RecordVerb", "StartCallRecordingAPI"),
    "signalwire": ("DialVerb", "OutBoundApi", "Trunking", "RecordVerb", "StartCallRecordingApi"),
    "bird": ("call",),
}
CONFERENCE_SOURCES = {
    "twilio": ("Conference", "StartConferenceRecordingAPI"),
    "signalwire": ("Conference", "StartConferenceRecording"),
    "bird": ("conference",),
}
BIRD_ORIGINS = ("call-command-record", "call-command-record-call", "create-call", "bridge-call")
ABSENT_ERROR_CODES = (16104, 13617, 13227)
NUMBERS = (
    "+3197004499436",
    "+351919150029",
    "+14155550123",
    "+14155550199",
    "+442071838750",
    "+4930901820",
    "+3197010260111",
)
PRICE_PER_MINUTE = Decimal("-0.0025")
READY_SHARE = 0.65
TIE_SHARE = 0.15


def build_dataset(config: SandboxConfig) -> Dataset:
    """Seed `config.recordings_per_provider` recordings per account of each provider.

    Every account draws from its own stream of `config.seed`, so each holds recordings of the
    same shape (statuses, sources, times before the same anchor) under ids of its own. Account
    0's stream is named as it was before there were several accounts, so the demo data (and
    its sample ids) stay as they are. Without `config.anchor`, the clock is read once, here.
    """
    newest = config.anchor_at(datetime.now(UTC)) - NEWEST
    dataset = Dataset(primary={p: config.accounts(p)[0].account for p in PROVIDERS})
    for provider in PROVIDERS:
        for index, account in enumerate(config.accounts(provider)):
            stream = (
                f"{config.seed}:{provider}" if index == 0 else f"{config.seed}:{provider}:{index}"
            )
            _Seeder(provider, account.account, random.Random(stream)).fill(
                dataset, config.recordings_per_provider, newest
            )
    return dataset


class _Seeder:
    """Draws the records of one provider; every draw comes from its own `random.Random`."""

    def __init__(self, provider: str, account: str, rng: random.Random) -> None:
        self.provider = provider
        self.account = account
        self.rng = rng
        self.calls: list[str] = []
        self.conferences: list[str] = []
        self.channels = [self.uuid(), self.uuid()]

    def fill(self, dataset: Dataset, count: int, newest: datetime) -> None:
        statuses = self.statuses(count)
        # The transient recordings take the newest slots; each group keeps its drawn order.
        transient = TRANSIENT[self.provider]
        order = sorted(range(count), key=lambda index: statuses[index] not in transient)
        times = self.creation_times(count, sum(s in transient for s in statuses), newest)
        slot_of = {index: slot for slot, index in enumerate(order)}
        for index, status in enumerate(statuses):  # drawn in this order: the ids stay put
            dataset.put(self.record(times[slot_of[index]], status))

    def statuses(self, count: int) -> list[str]:
        known = STATUSES[self.provider]
        ready = READY_STATUS[self.provider]
        drawn = list(known[:count])
        while len(drawn) < count:
            drawn.append(ready if self.rng.random() < READY_SHARE else self.rng.choice(known))
        self.rng.shuffle(drawn)
        return drawn

    def creation_times(self, count: int, transients: int, newest: datetime) -> list[datetime]:
        """`count` creation times, newest first, from `newest` back to `SPAN` before the anchor.

        The gaps are drawn in minutes, hours or days (some nil: ties, which paging must
        handle), then scaled: those between the first `transients` slots to fit within
        `RECENT`, the others to fill the rest. A drawn gap never scales to nothing,
        so the ties are the drawn ones.
        """
        drawn: list[timedelta] = []  # drawn[i] lies between slots i and i + 1 (the last: none)
        for _ in range(count):
            tied = self.rng.random() < TIE_SHARE  # then the next one shares this instant
            drawn.append(timedelta(0) if tied else self.gap())
        gaps = drawn[:-1]
        cut = max(transients - 1, 0)
        recent = _scaled(gaps[:cut], RECENT, stretch=False)
        room = SPAN - NEWEST - sum(recent, timedelta(0))
        scaled = recent + _scaled(gaps[cut:], room, stretch=True)
        unit = timedelta(milliseconds=1 if self.provider == "bird" else 1000)
        moment = newest + timedelta(milliseconds=BIRD_MILLIS if self.provider == "bird" else 0)
        times = [moment]
        for gap in scaled:
            if gap:
                moment -= max(unit, gap // unit * unit)
            times.append(moment)
        return times[:count]

    def gap(self) -> timedelta:
        scale = self.rng.choice(("minutes", "hours", "days"))
        ms = self.rng.randrange(1000) if self.provider == "bird" else 0
        amount = {"minutes": (1, 59), "hours": (1, 30), "days": (1, 9)}[scale]
        return timedelta(**{scale: self.rng.randint(*amount)}, milliseconds=ms)

    def hex_id(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(128):032x}"

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def new_id(self, twilio_prefix: str) -> str:
        return self.hex_id(twilio_prefix) if self.provider == "twilio" else self.uuid()

    def reuse_or_new(self, pool: list[str], twilio_prefix: str) -> str:
        if pool and self.rng.random() < 0.25:
            return self.rng.choice(pool)
        pool.append(self.new_id(twilio_prefix))
        return pool[-1]

    def record(self, created: datetime, status: str) -> SandboxRecording:
        rng = self.rng
        conference = rng.random() < 0.3
        sources = CONFERENCE_SOURCES if conference else CALL_SOURCES
        call_id: str | None = self.reuse_or_new(self.calls, "CA")
        conference_id = self.reuse_or_new(self.conferences, "CF") if conference else None
        if conference and self.provider == "signalwire":
            call_id = None  # SignalWire: "Null if this is a conference recording."
        duration = rng.randint(1, 90)
        started, ended = self.span(created, status, duration)
        originator, receiver = rng.sample(NUMBERS, 2)
        return SandboxRecording(
            provider=self.provider,
            id=self.new_id("RE"),
            account=self.account,
            status=status,
            source=rng.choice(sources[self.provider]),
            created=created,
            updated=(ended or created) + timedelta(seconds=rng.randint(0, 5)),
            started=started,
            ended=ended,
            duration=duration,
            channels=rng.choice((1, 2)),
            call_id=call_id,
            conference_id=conference_id,
            price=self.price(status, duration),
            error_code=rng.choice(ABSENT_ERROR_CODES) if status == "absent" else None,
            direction=rng.choice(("incoming", "outgoing")),
            originator=originator,
            receiver=receiver,
            contact_id=self.uuid() if rng.random() < 0.5 else None,
            origin=rng.choice(BIRD_ORIGINS) if self.provider == "bird" else None,
            channel_id=rng.choice(self.channels) if self.provider == "bird" else None,
            trim=rng.choice(("do-not-trim", "trim-silence")),
            transcription=rng.random() < 0.2,
        )

    def span(
        self, created: datetime, status: str, duration: int
    ) -> tuple[datetime | None, datetime | None]:
        if status in NOT_STARTED:
            return None, None
        lead = timedelta(milliseconds=self.rng.randrange(200)) if self.provider == "bird" else None
        started = created - lead if lead else created
        if status in {"in-progress", "paused", "resumed", "ongoing"}:
            return started, None
        return started, started + timedelta(seconds=duration)

    def price(self, status: str, duration: int) -> Decimal | None:
        if self.provider == "bird" or status not in {"completed", "deleted"}:
            return None
        return PRICE_PER_MINUTE * ((duration + 59) // 60)


def _scaled(gaps: list[timedelta], room: timedelta, *, stretch: bool) -> list[timedelta]:
    """`gaps` scaled to add up to `room`; shrunk only, unless `stretch`; as they are if nil."""
    total = sum(gaps, timedelta(0))
    if not total or (total <= room and not stretch):
        return gaps
    return [gap * (room / total) for gap in gaps]
