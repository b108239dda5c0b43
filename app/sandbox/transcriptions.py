"""The sandbox's transcriptions: one record type, the store, the seed, and each provider's JSON.

Seeded deterministically from the recordings (a hash of each id, no random stream, so the
recordings' own seeding is untouched): about a third of the completed recordings have a
completed transcription, some of those a second one (failed, or still running), and a few
completed recordings have one still in progress.

Bird's transcriptions asked for through its API (``POST``) are ``accepted`` until
``COMPLETES_AFTER`` has passed on the sandbox's clock, then ``available`` with their text,
so the demo shows one finish.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from app.sandbox.data import Dataset, SandboxRecording

#: The status of a finished, readable transcription, per provider.
DONE = {"twilio": "completed", "signalwire": "completed", "bird": "available"}
RUNNING = {"twilio": "in-progress", "signalwire": "in-progress", "bird": "ongoing"}
#: How long a transcription asked for through Bird's API takes in the sandbox.
COMPLETES_AFTER = timedelta(seconds=5)
PRICE_PER_MINUTE = Decimal("-0.05")

PHRASES = (
    "Hello, this is a test transcription.",
    "Thanks for calling, your order has shipped and should arrive on Thursday.",
    "Please call me back about the invoice when you have a moment.",
    "The meeting is moved to three o'clock, same room as last week.",
    "I would like to confirm my appointment for tomorrow morning.",
)


@dataclass(frozen=True, slots=True)
class SandboxTranscription:
    """One transcription as a provider keeps it (``status`` in the provider's spelling)."""

    provider: str
    id: str
    recording_id: str
    account: str
    status: str
    created: datetime
    updated: datetime
    text: str | None
    locale: str = "en-US"
    duration: int = 0
    stereo: bool = False
    #: When an ``accepted`` one (Bird's POST) becomes ``available`` (None: never by itself).
    completes_at: datetime | None = None

    def at(self, now: datetime) -> SandboxTranscription:
        """As it stands at ``now``."""
        if self.completes_at is None or now < self.completes_at:
            return self
        text = PHRASES[_number(self.id) % len(PHRASES)]
        done = DONE[self.provider]
        return replace(self, status=done, text=text, updated=self.completes_at, completes_at=None)

    @property
    def price(self) -> Decimal | None:
        if self.status != DONE[self.provider]:
            return None
        return PRICE_PER_MINUTE * ((self.duration + 59) // 60)


class TranscriptionStore:
    """Per provider and recording, its transcriptions, newest first (ties by id)."""

    def __init__(self) -> None:
        self._by_recording: dict[tuple[str, str], list[SandboxTranscription]] = {}
        self._by_id: dict[tuple[str, str], SandboxTranscription] = {}

    @classmethod
    def seeded(cls, dataset: Dataset) -> TranscriptionStore:
        store = cls()
        for record in dataset.all_records():
            if record.ready:
                for transcription in seed_for(record):
                    store.add(transcription)
        return store

    def add(self, transcription: SandboxTranscription) -> SandboxTranscription:
        key = (transcription.provider, transcription.recording_id)
        kept = [t for t in self._by_recording.get(key, []) if t.id != transcription.id]
        kept.append(transcription)
        kept.sort(key=lambda t: (-t.created.timestamp(), t.id))
        self._by_recording[key] = kept
        self._by_id[(transcription.provider, transcription.id)] = transcription
        return transcription

    def of(self, provider: str, recording_id: str, now: datetime) -> list[SandboxTranscription]:
        """The recording's transcriptions as they stand at ``now``, newest first."""
        return [t.at(now) for t in self._by_recording.get((provider, recording_id), [])]

    def get(
        self, provider: str, transcription_id: str, now: datetime
    ) -> SandboxTranscription | None:
        found = self._by_id.get((provider, transcription_id))
        return None if found is None else found.at(now)

    def of_account(self, provider: str, account: str, now: datetime) -> list[SandboxTranscription]:
        """Every transcription of one account, newest first."""
        mine = [t.at(now) for t in self._by_id.values() if t.provider == provider]
        mine = [t for t in mine if t.account == account]
        return sorted(mine, key=lambda t: (-t.created.timestamp(), t.id))


def _number(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def new_id(provider: str, material: str) -> str:
    """A transcription id in the provider's format (Twilio ``TR`` + 32 hex, else a UUID)."""
    digest = hashlib.sha256(material.encode()).digest()
    if provider == "twilio":
        return "TR" + digest[:16].hex()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def seed_for(record: SandboxRecording) -> Iterable[SandboxTranscription]:
    """The seeded transcriptions of one completed recording (often none), from its id."""
    draw = _number(f"transcriptions:{record.id}")
    kind = draw % 12
    if kind >= 5:  # most recordings were never transcribed
        return []
    done = _transcription(record, 0, DONE[record.provider], draw)
    if kind == 0:  # asked for again, and that one failed
        return [done, _transcription(record, 1, "failed", draw)]
    if kind == 1:  # one still running
        return [_transcription(record, 0, RUNNING[record.provider], draw)]
    if kind == 2 and record.provider == "bird":  # Bird: nothing to transcribe
        return [_transcription(record, 0, "absent", draw)]
    return [done]


def _transcription(
    record: SandboxRecording, index: int, status: str, draw: int
) -> SandboxTranscription:
    ended = record.ended or record.created
    created = ended + timedelta(seconds=30 + 600 * index, milliseconds=draw % 1000)
    if record.provider != "bird":
        created = created.replace(microsecond=0)
    done = status == DONE[record.provider]
    return SandboxTranscription(
        provider=record.provider,
        id=new_id(record.provider, f"{record.id}:{index}"),
        recording_id=record.id,
        account=record.account,
        status=status,
        created=created,
        updated=created + timedelta(seconds=8) if status != RUNNING[record.provider] else created,
        text=PHRASES[(draw >> 8) % len(PHRASES)] if done else None,
        duration=record.duration,
        stereo=record.channels == 2,
    )
