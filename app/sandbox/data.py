"""The sandbox's recordings: one provider-neutral record type and the mutable store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.sandbox.config import PROVIDERS

#: The status at which each provider's media can be downloaded.
READY_STATUS = {"twilio": "completed", "signalwire": "completed", "bird": "available"}

#: Every status each provider is known to report, the ready one first.
STATUSES = {
    "twilio": (
        "completed",
        "in-progress",
        "paused",
        "stopped",
        "processing",
        "absent",
        "deleted",
    ),
    "signalwire": (
        "completed",
        "queued",
        "in-progress",
        "paused",
        "resumed",
        "absent",
        "stopped",
    ),
    "bird": ("available", "accepted", "ongoing", "paused", "completed", "absent", "failed"),
}

#: Statuses of recordings that have not started yet, or are still running.
NOT_STARTED = frozenset({"queued", "accepted"})
RUNNING = frozenset({"in-progress", "paused", "resumed", "ongoing", "queued", "accepted"})

SortKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class SandboxRecording:
    """One recording as a provider keeps it; the renderers turn it into that provider's JSON.

    `status` and `source` hold the provider's own spelling. `call_id`/`conference_id` are filled
    the way the provider fills them (SignalWire leaves `call_id` empty on conference recordings).
    `duration` is the length of the audio in whole seconds (the media served is that long).
    """

    provider: str
    id: str
    account: str
    status: str
    source: str
    created: datetime
    updated: datetime
    started: datetime | None
    ended: datetime | None
    duration: int
    channels: int
    call_id: str | None = None
    conference_id: str | None = None
    price: Decimal | None = None
    price_unit: str = "USD"
    error_code: int | None = None
    direction: str = "outgoing"
    originator: str = "+3197004499436"
    receiver: str = "+351919150029"
    contact_id: str | None = None
    origin: str | None = None
    channel_id: str | None = None
    trim: str = "do-not-trim"
    transcription: bool = False

    @property
    def ready(self) -> bool:
        """True when the media can be downloaded."""
        return self.status == READY_STATUS[self.provider]

    @property
    def running(self) -> bool:
        """True while the recording has not finished."""
        return self.status in RUNNING

    @property
    def sort_key(self) -> SortKey:
        """Listing order: newest first, ties by id ascending."""
        return (-_micros(self.created), self.id)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


class Dataset:
    """Per provider, an ordered mapping id -> record; tests may `put` and `delete` freely.

    Removed records are remembered so that a page token naming one still marks a position.
    """

    def __init__(self) -> None:
        self._records: dict[str, dict[str, SandboxRecording]] = {p: {} for p in PROVIDERS}
        self._removed: dict[str, dict[str, SortKey]] = {p: {} for p in PROVIDERS}
        self._sorted: dict[str, list[SandboxRecording]] = {}

    def put(self, record: SandboxRecording) -> SandboxRecording:
        """Insert or replace a record (keyed by provider and id)."""
        self._records[record.provider][record.id] = record
        self._removed[record.provider].pop(record.id, None)
        self._sorted.pop(record.provider, None)
        return record

    def delete(self, provider: str, recording_id: str) -> SandboxRecording | None:
        """Remove a record for good; returns it, or None when there was none."""
        record = self._records[provider].pop(recording_id, None)
        if record is not None:
            self._removed[provider][recording_id] = record.sort_key
            self._sorted.pop(provider, None)
        return record

    def get(self, provider: str, recording_id: str) -> SandboxRecording | None:
        """The record, or None."""
        return self._records[provider].get(recording_id)

    def listing(self, provider: str) -> list[SandboxRecording]:
        """All records of a provider, newest first (ties by id); do not mutate the list."""
        cached = self._sorted.get(provider)
        if cached is None:
            cached = sorted(self._records[provider].values(), key=lambda r: r.sort_key)
            self._sorted[provider] = cached
        return cached

    def position(self, provider: str, recording_id: str) -> SortKey | None:
        """Sort key of a present or removed record (what page tokens point at)."""
        record = self.get(provider, recording_id)
        if record is not None:
            return record.sort_key
        return self._removed[provider].get(recording_id)

    def __iter__(self) -> Iterator[SandboxRecording]:
        for provider in PROVIDERS:
            yield from self.listing(provider)

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())
