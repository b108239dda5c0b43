"""The sandbox's recordings: one provider-neutral record type and the mutable store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.sandbox.config import DEMO, PROVIDERS

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

#: Per provider, the statuses a recording holds for minutes or hours only: not started, running,
#: or ended with its media not ready yet (Bird's "completed"). The newest recordings hold them.
TRANSIENT = {
    "twilio": frozenset({"in-progress", "paused", "stopped", "processing"}),
    "signalwire": frozenset({"queued", "in-progress", "paused", "resumed", "stopped"}),
    "bird": frozenset({"accepted", "ongoing", "paused", "completed"}),
}

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
    """Per provider, an ordered mapping id -> record, over any number of accounts.

    Tests may `put` and `delete` freely. Ids are unique per provider across accounts (as the
    providers' ids are globally unique), so `get` and `delete` find a record by id alone unless
    `account` narrows them. `listing`, `position`, iteration and `len()` cover one account per
    provider: the one given, or by default the provider's primary account (account 0, the demo
    credentials' one, unless `primary` says otherwise). `all_records()` covers every account.

    Removed records are remembered so that a page token naming one still marks a position.
    """

    def __init__(self, primary: Mapping[str, str] | None = None) -> None:
        self.primary: dict[str, str] = {p: DEMO.accounts(p)[0].account for p in PROVIDERS}
        self.primary.update(primary or {})
        self._records: dict[str, dict[str, SandboxRecording]] = {p: {} for p in PROVIDERS}
        self._removed: dict[str, dict[str, tuple[str, SortKey]]] = {p: {} for p in PROVIDERS}
        self._sorted: dict[tuple[str, str], list[SandboxRecording]] = {}

    def put(self, record: SandboxRecording) -> SandboxRecording:
        """Insert or replace a record (keyed by provider and id)."""
        previous = self._records[record.provider].get(record.id)
        if previous is not None:
            self._sorted.pop((previous.provider, previous.account), None)
        self._records[record.provider][record.id] = record
        self._removed[record.provider].pop(record.id, None)
        self._sorted.pop((record.provider, record.account), None)
        return record

    def delete(self, provider: str, recording_id: str) -> SandboxRecording | None:
        """Remove a record for good; returns it, or None when there was none."""
        record = self._records[provider].pop(recording_id, None)
        if record is not None:
            self._removed[provider][recording_id] = (record.account, record.sort_key)
            self._sorted.pop((provider, record.account), None)
        return record

    def get(
        self, provider: str, recording_id: str, account: str | None = None
    ) -> SandboxRecording | None:
        """The record, or None; with `account`, None too when it belongs to another account."""
        record = self._records[provider].get(recording_id)
        if record is None or (account is not None and record.account != account):
            return None
        return record

    def listing(self, provider: str, account: str | None = None) -> list[SandboxRecording]:
        """The records of one account (default: the primary one), newest first (ties by id).

        Do not mutate the list.
        """
        key = (provider, account or self.primary[provider])
        cached = self._sorted.get(key)
        if cached is None:
            mine = (r for r in self._records[provider].values() if r.account == key[1])
            cached = sorted(mine, key=lambda r: r.sort_key)
            self._sorted[key] = cached
        return cached

    def position(
        self, provider: str, recording_id: str, account: str | None = None
    ) -> SortKey | None:
        """Sort key of a present or removed record of the account (what page tokens point at)."""
        owner = account or self.primary[provider]
        record = self.get(provider, recording_id, owner)
        if record is not None:
            return record.sort_key
        removed = self._removed[provider].get(recording_id)
        return removed[1] if removed is not None and removed[0] == owner else None

    def accounts(self, provider: str) -> list[str]:
        """The accounts holding records of `provider`, primary first, then by id."""
        present = {r.account for r in self._records[provider].values()}
        primary = self.primary[provider]
        return [primary, *sorted(present - {primary})]

    def all_records(self) -> Iterator[SandboxRecording]:
        """Every record of every account, per provider, account by account (as `accounts`)."""
        for provider in PROVIDERS:
            for account in self.accounts(provider):
                yield from self.listing(provider, account)

    def __iter__(self) -> Iterator[SandboxRecording]:
        for provider in PROVIDERS:
            yield from self.listing(provider)

    def __len__(self) -> int:
        return sum(len(self.listing(provider)) for provider in PROVIDERS)
