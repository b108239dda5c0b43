"""What a verified delivery announces, read from each provider's callback format.

A delivery becomes a ``Notice`` (a recording changed, or one of its transcriptions did), or
an ``Ignored`` with the reason (an event the gateway does not act on, or a body it cannot
read): both are acknowledged with 2xx, since the delivery is authentic and a 4xx would only
make the provider retry it (Bird for 8 hours) or log it as failed.

- **Twilio / SignalWire** (form-encoded): ``RecordingStatusCallback`` carries
  ``RecordingSid`` and ``RecordingStatus`` (``in-progress``, ``completed``, ``absent``,
  ``failed``; also ``AccountSid``, ``CallSid``, ``RecordingUrl``, ``RecordingDuration``,
  ``RecordingChannels``, ``RecordingStartTime``, ``RecordingSource``, ``RecordingTrack``,
  ``ErrorCode``, ``ConferenceSid``). ``<Record transcribeCallback>`` carries
  ``TranscriptionSid``, ``TranscriptionStatus`` (``completed``/``failed``),
  ``TranscriptionText``, ``TranscriptionUrl``, ``RecordingSid``, ``RecordingUrl``. A delivery
  naming another ``AccountSid`` than the tenant's is ignored (its recording is not ours to
  refresh). Other Twilio callbacks (call status, ``<Record action>``) are ignored.
- **Bird** (JSON, the Notifications API's envelope ``{"service", "event", "payload"}``): an
  event whose name mentions ``recording`` carries the recording (``payload.id``, or
  ``payload.recordingId``, and ``payload.status``); one whose name mentions ``transcription``
  carries a transcription (``payload.id``, ``payload.recordingId``, ``payload.status``). Bird
  documents only the call life-cycle events ``voice.inbound`` and ``voice.outbound``, which
  name a call, not a recording: they are ignored.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import BadUserInputError
from app.models import Provider
from app.providers import check_id


class Kind(enum.Enum):
    """What changed."""

    RECORDING = "recording"
    TRANSCRIPTION = "transcription"


@dataclass(frozen=True)
class Notice:
    """A verified change: which recording, what changed, and the provider's status of it.
    ``subject`` is the id of what changed (the recording's, or the transcription's)."""

    provider: Provider
    kind: Kind
    recording_id: str
    subject: str
    status: str


@dataclass(frozen=True)
class Ignored:
    """A verified delivery the gateway does not act on, and why (for the log)."""

    reason: str


#: Transcription statuses that mean its text is there (Twilio/SignalWire ``completed``;
#: Bird's ``completed``, ``available`` and MessageBird's ``done``).
TRANSCRIBED = frozenset({"completed", "available", "done"})


def laml_notice(
    provider: Provider, params: Sequence[tuple[str, str]], account: str
) -> Notice | Ignored:
    """A Twilio or SignalWire callback's notice (``account``: the tenant's AccountSid)."""
    fields = dict(params)
    recording_id = fields.get("RecordingSid", "")
    if not recording_id:
        return Ignored("no RecordingSid: not a recording callback")
    given_account = fields.get("AccountSid")
    if given_account is not None and given_account != account:
        return Ignored("AccountSid is not this tenant's account")
    transcription = fields.get("TranscriptionSid")
    if transcription:
        status = fields.get("TranscriptionStatus", "")
        return _checked(Notice(provider, Kind.TRANSCRIPTION, recording_id, transcription, status))
    status = fields.get("RecordingStatus", "")
    if not status:
        return Ignored("no RecordingStatus: not a recording status callback")
    return _checked(Notice(provider, Kind.RECORDING, recording_id, recording_id, status))


def bird_notice(body: bytes) -> Notice | Ignored:
    """A Bird webhook delivery's notice."""
    try:
        data = json.loads(body)
    except ValueError:
        return Ignored("the body is not JSON")
    if not isinstance(data, dict) or not isinstance(data.get("payload"), dict):
        return Ignored("not a Bird event (no payload object)")
    event = str(data.get("event", ""))
    payload: Mapping[str, Any] = data["payload"]
    status = _text(payload.get("status"))
    if "transcription" in event:
        recording_id, subject = _text(payload.get("recordingId")), _text(payload.get("id"))
        if not (recording_id and subject):
            return Ignored(f"{event!r} names no recording")
        return _checked(Notice(Provider.BIRD, Kind.TRANSCRIPTION, recording_id, subject, status))
    if "recording" in event:
        recording_id = _text(payload.get("recordingId")) or _text(payload.get("id"))
        if not recording_id:
            return Ignored(f"{event!r} names no recording")
        return _checked(Notice(Provider.BIRD, Kind.RECORDING, recording_id, recording_id, status))
    return Ignored(f"event {event!r} is not about a recording")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _checked(notice: Notice) -> Notice | Ignored:
    """The notice, if its recording id has the provider's format (else nothing to refresh)."""
    try:
        check_id(notice.provider, notice.recording_id)
    except BadUserInputError:
        return Ignored("the recording id does not have the provider's format")
    return notice
