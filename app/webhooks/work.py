"""What a verified notice does, once the provider has its answer: refresh, then announce.

1. The recording is asked of its provider again (``RecordingService.refresh``: one upstream
   call, shared with concurrent readers) and stored, so the next ``recording(...)`` query is
   a cache hit with the new state, and every cached answer holding the old one is purged.
2. A transcription notice also refreshes the recording's transcriptions
   (``refresh_transcriptions``).
3. A ``RecordingEvent`` is published on the event bus, once per recording and resulting
   state (a provider's retry, or two deliveries leading to one state, make one event).

The event's type says what the refreshed recording now is (the provider's API is the truth;
a callback's own status may lag behind or run ahead of it):

==================  =============================================================
DELETED             the provider has it no more (404 on refresh), or its status is
                    ``deleted``; the event carries the last state the gateway held
                    (or the ids alone), status DELETED
FAILED              ``absent`` or ``failed`` (no media will come)
COMPLETED           media ready: Twilio/SignalWire ``completed``, Bird ``available``
CREATED             not finished (queued, in-progress, Bird accepted/ongoing, ...) and
                    the first delivery about this recording the gateway has seen
STATUS_CHANGED      not finished, and seen before (paused, resumed, processing, ...)
TRANSCRIBED         a transcription callback whose status says the text is there
                    (a failed transcription refreshes, but announces nothing)
==================  =============================================================

An expected failure (the provider down, rate limited, refusing the credentials) is one
WARNING line, no traceback; the delivery's claim is then released, so a redelivery is
worked on again rather than ignored.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from app import transcriptions
from app.errors import GatewayError
from app.events import EventBus, RecordingEvent, RecordingEventType
from app.models import Provider, Recording, RecordingStatus
from app.recordings import RecordingService
from app.webhooks.dedupe import Seen
from app.webhooks.notices import TRANSCRIBED, Kind, Notice

logger = logging.getLogger("app.webhooks")

_FAILED = frozenset({RecordingStatus.ABSENT, RecordingStatus.FAILED})


@dataclass(frozen=True)
class Job:
    """One verified notice to work on, for one tenant's recordings."""

    tenant: str
    notice: Notice
    recordings: RecordingService
    events: EventBus
    seen: Seen

    @property
    def delivery(self) -> tuple[str, ...]:
        """The claim of the delivery itself (taken before it is acknowledged)."""
        notice = self.notice
        return (
            self.tenant,
            notice.provider.value,
            notice.kind.value,
            notice.subject,
            notice.status,
        )

    async def run(self) -> None:
        """Refresh, then announce; an expected failure is logged, and the claim released."""
        notice = self.notice
        try:
            await self._run()
        except GatewayError as exc:
            await self.seen.release(*self.delivery)
            logger.warning(
                "webhook from %s about %s %s not applied: %s (%s)",
                notice.provider.value,
                notice.kind.value,
                notice.subject,
                exc.code,
                exc.message,
            )

    async def _run(self) -> None:
        notice = self.notice
        refreshed = await self.recordings.refresh(notice.provider, notice.recording_id)
        if notice.kind is Kind.TRANSCRIPTION:
            await refresh_transcriptions(self.recordings, notice.provider, notice.recording_id)
        first = await self.seen.claim(
            self.tenant, notice.provider.value, "seen", notice.recording_id
        )
        kind = event_type(notice, refreshed.recording, first=first)
        if kind is None:
            return
        recording = refreshed.recording or deleted(
            notice.provider, notice.recording_id, refreshed.previous
        )
        once = (self.tenant, notice.provider.value, "event", notice.recording_id, kind.value)
        state = (
            notice.subject if kind is RecordingEventType.TRANSCRIBED else recording.provider_status
        )
        if await self.seen.claim(*once, state):
            await self.events.publish(
                RecordingEvent(self.tenant, kind, recording, datetime.now(UTC))
            )


def event_type(
    notice: Notice, recording: Recording | None, *, first: bool
) -> RecordingEventType | None:
    """The event a notice makes, from the refreshed recording (None: gone); None: no event."""
    if recording is None or recording.status is RecordingStatus.DELETED:
        return RecordingEventType.DELETED
    if notice.kind is Kind.TRANSCRIPTION:
        return RecordingEventType.TRANSCRIBED if notice.status in TRANSCRIBED else None
    if recording.status in _FAILED:
        return RecordingEventType.FAILED
    if recording.status is RecordingStatus.COMPLETED:
        return RecordingEventType.COMPLETED
    return RecordingEventType.CREATED if first else RecordingEventType.STATUS_CHANGED


def deleted(provider: Provider, recording_id: str, last: Recording | None) -> Recording:
    """What a DELETED event carries: the last state held, marked deleted, or the ids alone."""
    if last is None:
        return Recording(provider, recording_id, RecordingStatus.DELETED, "deleted")
    return replace(last, status=RecordingStatus.DELETED)


async def refresh_transcriptions(
    recordings: RecordingService, provider: Provider, recording_id: str
) -> None:
    """A transcription callback: the recording's cached transcriptions (and every cached
    answer holding them) are dropped, so the next query reads the new text."""
    await transcriptions.forget(recordings, provider, recording_id)
