"""The Twilio-style REST dialect ("LaML") that Twilio and SignalWire both speak.

Same paths, Basic auth, envelope and error body ``{code, message, more_info, status}``;
the differences (id formats, value types, source casing) are absorbed by the
lenient readers in ``parsing`` so one ``to_recording`` serves both.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import httpx

from app.models import MediaFormat, Recording, RecordingStatus
from app.providers import parsing
from app.providers.base import HttpProvider

STATUSES = {
    "queued": RecordingStatus.QUEUED,
    "in-progress": RecordingStatus.IN_PROGRESS,
    "resumed": RecordingStatus.IN_PROGRESS,
    "paused": RecordingStatus.PAUSED,
    "stopped": RecordingStatus.STOPPED,
    "processing": RecordingStatus.PROCESSING,
    "completed": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.ABSENT,
    "failed": RecordingStatus.FAILED,
    "deleted": RecordingStatus.DELETED,
}

# Twilio's casing is canonical; SignalWire writes OutBoundApi, StartCallRecordingApi, ...
SOURCES = {
    name.lower(): name
    for name in (
        "DialVerb",
        "Conference",
        "OutboundAPI",
        "Trunking",
        "RecordVerb",
        "StartCallRecordingAPI",
        "StartConferenceRecordingAPI",
    )
}
SOURCES["startconferencerecording"] = "StartConferenceRecordingAPI"


class LamlProvider(HttpProvider):
    """Base for Twilio and SignalWire: one account, Basic auth, ``.json`` resources."""

    api_root: str
    media_formats: ClassVar[tuple[MediaFormat, ...]] = (MediaFormat.WAV, MediaFormat.MP3)

    def __init__(
        self, client: httpx.AsyncClient, *, api_root: str, account: str, auth: httpx.BasicAuth
    ) -> None:
        super().__init__(client, auth, api_root)
        self.api_root = api_root
        self._account = account

    @property
    def account_id(self) -> str:
        return self._account

    def recording_url(self, recording_id: str, suffix: str = ".json") -> str:
        """Metadata with ``.json``; the media with ``""``, ``.wav`` or ``.mp3``."""
        return f"{self.api_root}/Accounts/{self._account}/Recordings/{recording_id}{suffix}"

    def media_url(self, recording_id: str, fmt: MediaFormat) -> str:
        return self.recording_url(recording_id, f".{fmt.value}")

    def to_recording(self, payload: Mapping[str, Any]) -> Recording:
        sid = payload["sid"]
        if not isinstance(sid, str) or not self.id_pattern.match(sid):
            raise ValueError("sid is missing or not a recording id")
        started = parsing.rfc2822(payload.get("start_time"))
        seconds = parsing.duration(payload.get("duration"))
        provider_status = payload.get("status")
        source = payload.get("source")
        return Recording(
            provider=self.provider,
            id=sid,
            status=parsing.status(STATUSES, provider_status),
            provider_status=str(provider_status or ""),
            account_id=parsing.text(payload.get("account_sid")),
            call_id=parsing.text(payload.get("call_sid")),
            conference_id=parsing.text(payload.get("conference_sid")),
            source=SOURCES.get(source.lower(), source) if isinstance(source, str) else None,
            channels=parsing.channels(_first(payload, "channels", "channel")),
            duration_seconds=seconds,
            started_at=started,
            ended_at=parsing.rfc2822(payload.get("end_time")) or _end(started, seconds),
            created_at=parsing.rfc2822(payload.get("date_created")),
            updated_at=parsing.rfc2822(payload.get("date_updated")),
            price=parsing.money(payload.get("price"), payload.get("price_unit")),
            error_code=parsing.text(payload.get("error_code")),
            media_formats=self.media_formats,
            raw=dict(payload),
        )


def _first(payload: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if payload.get(key) is not None:
            return payload[key]
    return None


def _end(started: datetime | None, seconds: int | None) -> datetime | None:
    """Twilio has no end_time: it is start_time + duration."""
    if started is None or seconds is None:
        return None
    return started + timedelta(seconds=seconds)
