"""The Twilio-style REST dialect ("LaML") that Twilio and SignalWire both speak.

Same paths, Basic auth, envelope and error body ``{code, message, more_info, status}``;
the differences (id formats, value types, source casing) are absorbed by the
lenient readers in ``parsing`` so one ``to_recording`` serves both.

Transcriptions: ``GET .../Recordings/{id}/Transcriptions.json`` (envelope ``transcriptions``),
paged like the recordings (``next_page_uri`` followed verbatim, only while it stays on that
list's path), at most ``TRANSCRIPTION_CALLS`` pages of ``TRANSCRIPTION_PAGE_SIZE``. Neither
API can transcribe an existing recording (transcription is asked for when recording, with
``<Record transcribe>``): ``request_transcription`` is UNSUPPORTED_BY_PROVIDER.

Listing: the first request carries ``PageSize``, ``CallSid``, ``ConferenceSid`` and the
date filters (their format is the one thing each subclass does its own way); later pages
follow ``next_page_uri`` verbatim. That URI is relative to the *host* (it carries any
path prefix, e.g. ``/sandbox`` in demo mode) and is the page token the gateway keeps.
A token is only ever used when its path is this account's list path: a cursor can never
point the gateway (and its credentials) at another URL or host.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from app.errors import BadUserInputError, UnsupportedByProviderError
from app.models import (
    ListQuery,
    MediaFormat,
    Recording,
    RecordingPage,
    RecordingStatus,
    Transcription,
    TranscriptionStatus,
)
from app.providers import parsing
from app.providers.base import MAX_BODY_BYTES, HttpProvider
from app.providers.protocol import TRANSCRIPTION_CALLS
from app.resilience import CallGuard
from app.upstream.client import Upstream

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

TRANSCRIPTION_STATUSES = {
    "in-progress": TranscriptionStatus.IN_PROGRESS,
    "completed": TranscriptionStatus.COMPLETED,
    "failed": TranscriptionStatus.FAILED,
}

MAX_PAGE_SIZE = 1000
#: Transcriptions per page: a page of texts stays well under the body cap.
TRANSCRIPTION_PAGE_SIZE = 100
# A next_page_uri is a path and a query of a few filters; anything far longer is not one.
MAX_TOKEN_LENGTH = 2048


class LamlProvider(HttpProvider):
    """Base for Twilio and SignalWire: one account, Basic auth, ``.json`` resources."""

    api_root: str
    media_formats: ClassVar[tuple[MediaFormat, ...]] = (MediaFormat.WAV, MediaFormat.MP3)
    call_id_pattern: ClassVar[re.Pattern[str]]
    conference_id_pattern: ClassVar[re.Pattern[str]]

    def __init__(
        self,
        upstream: Upstream,
        *,
        api_root: str,
        account: str,
        auth: httpx.BasicAuth,
        redirect_hosts: tuple[str, ...] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        guard: CallGuard | None = None,
    ) -> None:
        super().__init__(
            upstream,
            auth,
            api_root,
            redirect_hosts=redirect_hosts,
            max_body_bytes=max_body_bytes,
            guard=guard,
        )
        self.api_root = api_root
        self._account = account
        self.list_url = f"{api_root}/Accounts/{account}/Recordings.json"
        parts = urlsplit(self.list_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._list_path = parts.path

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
        if not isinstance(sid, str) or not self.id_pattern.fullmatch(sid):
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

    @abstractmethod
    def date_params(self, query: ListQuery) -> dict[str, str]:
        """``DateCreated>``/``DateCreated<`` in this provider's format (a superset is fine)."""

    async def list_page(self, query: ListQuery, token: str | None, size: int) -> RecordingPage:
        if not self._may_match(query):
            return RecordingPage(())  # e.g. a Bird call id: this provider has no such call
        what = f"recording list for account {self._account}"
        if token is None:
            params = self.list_params(query, size)
            payload = await self.get_json(self.list_url, params=params, what=what)
        elif self.is_page_token(token):
            payload = await self.get_json(self._origin + token, what=what)
        else:
            message = f"not a {self.label} page of this account"
            raise BadUserInputError(message, provider=self.provider)
        return self.read_page(payload)

    def list_params(self, query: ListQuery, size: int) -> dict[str, str]:
        """The first request's query: page size, id filters, date filters."""
        params = {"PageSize": str(max(1, min(size, MAX_PAGE_SIZE)))}
        if query.call_id is not None:
            params["CallSid"] = query.call_id
        if query.conference_id is not None:
            params["ConferenceSid"] = query.conference_id
        return params | self.date_params(query)

    def is_page_token(self, token: str) -> bool:
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii() or not token.isprintable():
            return False
        if not token.startswith("/") or token.startswith("//") or " " in token or "\\" in token:
            return False
        parts = urlsplit(token)
        foreign = parts.scheme or parts.netloc or parts.fragment
        return not foreign and parts.path == self._list_path

    def read_page(self, payload: Mapping[str, Any]) -> RecordingPage:
        """The envelope ``{recordings: [...], next_page_uri, ...}``."""
        items = self.page_items(payload, "recordings")
        next_uri = payload.get("next_page_uri")
        if next_uri is not None and next_uri != "":
            if not isinstance(next_uri, str) or not self.is_page_token(next_uri):
                raise self.malformed("a next_page_uri outside its recording list")
        return RecordingPage(tuple(self.parse(item) for item in items), next_uri or None)

    def _may_match(self, query: ListQuery) -> bool:
        """False when an id filter cannot be one of this provider's ids (no request needed)."""
        if query.call_id is not None and not self.call_id_pattern.fullmatch(query.call_id):
            return False
        conference = query.conference_id
        return conference is None or bool(self.conference_id_pattern.fullmatch(conference))

    # --- transcriptions -------------------------------------------------------------------

    async def list_transcriptions(self, recording_id: str) -> tuple[Transcription, ...]:
        url = self.recording_url(recording_id, "/Transcriptions.json")
        path = urlsplit(url).path
        what = f"recording {recording_id!r}"
        payload = await self.get_json(
            url, params={"PageSize": str(TRANSCRIPTION_PAGE_SIZE)}, what=what
        )
        found = list(self.read_transcriptions(payload, recording_id))
        for _ in range(TRANSCRIPTION_CALLS - 1):
            next_uri = self._next_transcriptions(payload, path)
            if next_uri is None:
                break
            payload = await self.get_json(self._origin + next_uri, what=what)
            found.extend(self.read_transcriptions(payload, recording_id))
        return tuple(found)

    def _next_transcriptions(self, payload: Mapping[str, Any], path: str) -> str | None:
        """The next page's URI, only if it is a page of the same list (never another URL)."""
        next_uri = payload.get("next_page_uri")
        if next_uri is None or next_uri == "":
            return None
        if not isinstance(next_uri, str) or not next_uri.isascii() or not next_uri.isprintable():
            raise self.malformed("a next_page_uri outside its transcription list")
        parts = urlsplit(next_uri)
        if parts.scheme or parts.netloc or parts.path != path or not next_uri.startswith("/"):
            raise self.malformed("a next_page_uri outside its transcription list")
        return next_uri

    def read_transcriptions(
        self, payload: Mapping[str, Any], recording_id: str
    ) -> list[Transcription]:
        """The envelope ``{transcriptions: [...], next_page_uri, ...}``."""
        try:
            return [
                self.to_transcription(item, recording_id)
                for item in self.page_items(payload, "transcriptions")
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise self.malformed(f"a transcription it could not read ({exc})") from exc

    def to_transcription(self, item: Mapping[str, Any], recording_id: str) -> Transcription:
        sid = item["sid"]
        if not isinstance(sid, str) or not sid:
            raise ValueError("sid is missing")
        text = item.get("transcription_text")
        if text is not None and not isinstance(text, str):
            raise ValueError("transcription_text is not a string")
        provider_status = item.get("status")
        return Transcription(
            provider=self.provider,
            id=sid,
            recording_id=parsing.text(item.get("recording_sid")) or recording_id,
            status=parsing.transcription_status(TRANSCRIPTION_STATUSES, provider_status),
            provider_status=str(provider_status or ""),
            text=text,
            created_at=parsing.rfc2822(item.get("date_created")),
            updated_at=parsing.rfc2822(item.get("date_updated")),
        )

    async def request_transcription(self, recording_id: str, locale: str) -> Transcription:
        raise UnsupportedByProviderError(
            f"{self.label} cannot transcribe an existing recording (its transcriptions are "
            "asked for while recording, with <Record transcribe>)",
            provider=self.provider,
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
