"""Provider-neutral data: what every adapter turns its wire format into."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


class Provider(enum.Enum):
    """The recording providers the gateway speaks to."""

    TWILIO = "twilio"
    SIGNALWIRE = "signalwire"
    BIRD = "bird"


class RecordingStatus(enum.Enum):
    """A recording's life cycle, normalised across providers. Media is ready at COMPLETED."""

    QUEUED = "queued"
    IN_PROGRESS = "in-progress"
    PAUSED = "paused"
    STOPPED = "stopped"
    PROCESSING = "processing"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"
    DELETED = "deleted"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True when the recording will not change any more (safe to cache long)."""
        return self in _TERMINAL


_TERMINAL = frozenset(
    {
        RecordingStatus.COMPLETED,
        RecordingStatus.ABSENT,
        RecordingStatus.FAILED,
        RecordingStatus.DELETED,
    }
)


class TranscriptionStatus(enum.Enum):
    """A transcription's life cycle, normalised across providers; text is there at COMPLETED.

    Twilio and SignalWire: ``in-progress``, ``completed``, ``failed``. Bird: ``accepted``
    (QUEUED), ``ongoing``, ``available`` (COMPLETED), ``absent`` and ``failed`` (FAILED: no
    text will come). Values a provider adds later are UNKNOWN."""

    QUEUED = "queued"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        """True when the transcription will not change any more (safe to cache long)."""
        return self in (TranscriptionStatus.COMPLETED, TranscriptionStatus.FAILED)


class MediaFormat(enum.Enum):
    """Audio containers a provider can serve."""

    WAV = "wav"
    MP3 = "mp3"


class CallDirection(enum.Enum):
    """Which way the recorded call went, seen from the account."""

    INBOUND = "inbound"
    OUTBOUND = "outbound"


@dataclass(frozen=True)
class Money:
    """A positive amount charged, in ``currency`` (ISO 4217, upper case)."""

    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RecordingRef:
    """Names one recording: which provider, and the provider's own id."""

    provider: Provider
    id: str


@dataclass(frozen=True)
class Recording:
    """One call recording, normalised. ``raw`` is the provider's payload."""

    provider: Provider
    id: str
    status: RecordingStatus
    provider_status: str
    account_id: str | None = None
    call_id: str | None = None
    conference_id: str | None = None
    source: str | None = None
    direction: CallDirection | None = None
    from_: str | None = None
    to: str | None = None
    channels: int | None = None
    duration_seconds: int | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    price: Money | None = None
    error_code: str | None = None
    media_formats: tuple[MediaFormat, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Transcription:
    """One transcription of a recording, normalised. ``text`` is None until it is COMPLETED
    (and for a Bird transcription whose text the gateway did not read: see the adapter)."""

    provider: Provider
    id: str
    recording_id: str
    status: TranscriptionStatus
    provider_status: str
    text: str | None = None
    locale: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ListQuery:
    """What a listing asks each provider for; adapters push down what they can express.

    Bounds are half-open: ``created_after <= created_at < created_before``. An adapter may
    return a superset (Twilio filters by whole day); the gateway applies the exact filter.
    """

    call_id: str | None = None
    conference_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True)
class RecordingPage:
    """One upstream page, newest first; ``next_token`` resumes after it (None: last page)."""

    recordings: tuple[Recording, ...]
    next_token: str | None = None
