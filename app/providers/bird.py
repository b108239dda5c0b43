"""Bird's Recordings API (``https://api.bird.com/workspaces/{workspaceId}/recordings``).

Listing: ``limit`` (1..99), ``pageToken``/``nextPageToken``, ``startAt`` (inclusive) and
``endAt`` (exclusive) in RFC 3339, and ``sourceId``. ``sourceId`` is the call of a call
recording but the conference of a conference recording, and a call recording may still
carry a ``conferenceId``: so only a call id is pushed down (as ``sourceId``, a superset
the gateway narrows), and a conference id is filtered by the gateway alone.

Transcriptions (Bird's Transcriptions API): ``POST .../recordings/{id}/transcriptions`` with
``{"locale"}`` answers 202 with the new transcription (``status: accepted``). Bird documents
reading them workspace-wide only (``GET /workspaces/{ws}/transcriptions``, no recording
filter); a recording's own are read from ``GET .../recordings/{id}/transcriptions``, the
documented POST's collection, in the workspace list's envelope (``results``,
``nextPageToken``). A transcription's items carry no text: it is
``GET /workspaces/{ws}/transcriptions/{id}.txt``, read for the ``TRANSCRIPTION_CALLS - 1``
newest available ones (the first call is the list page); older ones have no text here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from app.errors import BadUserInputError
from app.models import (
    CallDirection,
    ListQuery,
    MediaFormat,
    Recording,
    RecordingPage,
    RecordingStatus,
    Transcription,
    TranscriptionStatus,
)
from app.models import Provider as ProviderName
from app.providers import parsing
from app.providers.base import MAX_BODY_BYTES, UUID, HttpProvider
from app.providers.protocol import TRANSCRIPTION_CALLS, ProviderLink
from app.resilience import CallGuard
from app.upstream.client import Upstream

STATUSES = {
    "accepted": RecordingStatus.QUEUED,
    "ongoing": RecordingStatus.IN_PROGRESS,
    "paused": RecordingStatus.PAUSED,
    # Bird's "completed" means the call ended; the media is ready only at "available".
    "completed": RecordingStatus.PROCESSING,
    "available": RecordingStatus.COMPLETED,
    "absent": RecordingStatus.ABSENT,
    "failed": RecordingStatus.FAILED,
    "deleted": RecordingStatus.DELETED,
}

TRANSCRIPTION_STATUSES = {
    "accepted": TranscriptionStatus.QUEUED,
    "ongoing": TranscriptionStatus.IN_PROGRESS,
    "available": TranscriptionStatus.COMPLETED,
    "absent": TranscriptionStatus.FAILED,  # nothing to transcribe: no text will come
    "failed": TranscriptionStatus.FAILED,
}

DIRECTIONS = {"incoming": CallDirection.INBOUND, "outgoing": CallDirection.OUTBOUND}

MAX_LIMIT = 99
MAX_TOKEN_LENGTH = 1024

# Short-lived presigned links: never kept in ``raw`` (it is cached); media links are minted anew.
VOLATILE_FIELDS = frozenset({"url"})


class AccessKeyAuth(httpx.Auth):
    """``Authorization: AccessKey <key>``; the key never leaves this object."""

    def __init__(self, key: str) -> None:
        self._header = f"AccessKey {key}"

    def auth_flow(self, request: httpx.Request) -> Any:
        request.headers["Authorization"] = self._header
        yield request


class BirdProvider(HttpProvider):
    """Recordings of one Bird workspace."""

    provider = ProviderName.BIRD
    label = "Bird"
    id_pattern = UUID
    id_description = "a UUID"
    media_formats: ClassVar[tuple[MediaFormat, ...]] = (MediaFormat.MP3,)
    # The media redirect goes to a presigned S3 link: S3 refuses a second auth mechanism.
    redirect_credentials: ClassVar[bool] = False

    def __init__(
        self,
        upstream: Upstream,
        *,
        base_url: str,
        workspace_id: str,
        access_key: str,
        redirect_hosts: tuple[str, ...] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        guard: CallGuard | None = None,
    ) -> None:
        super().__init__(
            upstream,
            AccessKeyAuth(access_key),
            base_url,
            redirect_hosts=redirect_hosts,
            max_body_bytes=max_body_bytes,
            guard=guard,
        )
        self._root = f"{base_url}/workspaces/{workspace_id}/recordings"
        self._transcriptions = f"{base_url}/workspaces/{workspace_id}/transcriptions"
        self._workspace = workspace_id

    @property
    def account_id(self) -> str:
        return self._workspace

    def recording_url(self, recording_id: str, suffix: str = "") -> str:
        return f"{self._root}/{recording_id}{suffix}"

    async def list_page(self, query: ListQuery, token: str | None, size: int) -> RecordingPage:
        if query.call_id is not None and not UUID.fullmatch(query.call_id):
            return RecordingPage(())  # not a Bird call id: no request needed
        params = self.list_params(query, size)
        if token is not None:
            if not self.is_page_token(token):
                raise BadUserInputError("not a Bird page token", provider=self.provider)
            params["pageToken"] = token  # Bird wants the filters again with the token
        what = f"recording list for workspace {self._workspace}"
        return self.read_page(await self.get_json(self._root, params=params, what=what))

    def list_params(self, query: ListQuery, size: int) -> dict[str, str]:
        params = {"limit": str(max(1, min(size, MAX_LIMIT)))}
        if query.call_id is not None:
            params["sourceId"] = query.call_id
        if query.created_after is not None:
            params["startAt"] = rfc3339(query.created_after, ceil=False)
        if query.created_before is not None:
            params["endAt"] = rfc3339(query.created_before, ceil=True)
        return params

    def is_page_token(self, token: str) -> bool:
        return 0 < len(token) <= MAX_TOKEN_LENGTH and token.isascii() and token.isprintable()

    def read_page(self, payload: Mapping[str, Any]) -> RecordingPage:
        """The envelope ``{results: [...], nextPageToken}`` (token absent or empty at the end)."""
        items = self.page_items(payload, "results")
        token = payload.get("nextPageToken")
        if token is not None and not isinstance(token, str):
            raise self.malformed("a nextPageToken that is not a string")
        return RecordingPage(tuple(self.parse(item) for item in items), token or None)

    def media_url(self, recording_id: str, fmt: MediaFormat) -> str:
        return self.recording_url(recording_id, ".mp3")

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        """The presigned S3 link Bird redirects ``.mp3`` to, with the expiry it is signed for
        (``expires_at`` cannot extend it). Asked anew each time: it is never cached."""
        request = self.media_request(recording_id, fmt)
        what = f"media for recording {recording_id!r}"
        response = await self.guard.call(
            lambda: self.send(request, what=what, stream=True),
            status_of=lambda answer: answer.status_code,
        )
        await response.aclose()
        if not 300 <= response.status_code < 400:
            raise self.malformed("media without the redirect it documents")
        url = self.next_hop(request, response).url
        expiry = presigned_expiry(url)
        if expiry is None:
            raise self.malformed("a media redirect that is not a presigned link")
        return ProviderLink(str(url), expiry)

    def to_recording(self, payload: Mapping[str, Any]) -> Recording:
        recording_id = payload["id"]
        if not isinstance(recording_id, str) or not UUID.fullmatch(recording_id):
            raise ValueError("id is missing or not a UUID")
        source = payload.get("source")
        stereo = payload.get("stereo")
        provider_status = payload.get("status")
        return Recording(
            provider=self.provider,
            id=recording_id,
            status=parsing.status(STATUSES, provider_status),
            provider_status=str(provider_status or ""),
            account_id=self._workspace,
            call_id=parsing.text(payload.get("sourceId")) if source == "call" else None,
            conference_id=parsing.text(payload.get("conferenceId"))
            or (parsing.text(payload.get("sourceId")) if source == "conference" else None),
            source=parsing.text(payload.get("origin")),
            direction=DIRECTIONS.get(str(payload.get("direction"))),
            from_=phone_number(payload.get("originator")),
            to=phone_number(payload.get("receiver")),
            channels=None if stereo is None else (2 if stereo is True else 1),
            duration_seconds=parsing.duration(payload.get("duration")),
            started_at=parsing.rfc3339(payload.get("startedAt")),
            ended_at=parsing.rfc3339(payload.get("endedAt")),
            created_at=parsing.rfc3339(payload.get("createdAt")),
            updated_at=parsing.rfc3339(payload.get("updatedAt")),
            media_formats=(MediaFormat.MP3,),
            raw={k: v for k, v in payload.items() if k not in VOLATILE_FIELDS},
        )

    # --- transcriptions -------------------------------------------------------------------

    async def list_transcriptions(self, recording_id: str) -> tuple[Transcription, ...]:
        url = self.recording_url(recording_id, "/transcriptions")
        what = f"recording {recording_id!r}"
        payload = await self.get_json(url, params={"limit": str(MAX_LIMIT)}, what=what)
        items = self.page_items(payload, "results")
        found = [self.transcription(item, recording_id) for item in items]
        ready = [t for t in found if t.status is TranscriptionStatus.COMPLETED]
        ready.sort(key=lambda t: t.created_at or datetime.min.replace(tzinfo=UTC), reverse=True)
        texts = await asyncio.gather(
            *(self.transcription_text(t.id) for t in ready[: TRANSCRIPTION_CALLS - 1])
        )
        known = {t.id: text for t, text in zip(ready, texts, strict=False)}
        return tuple(replace(t, text=known.get(t.id)) for t in found)

    async def transcription_text(self, transcription_id: str) -> str:
        """The plain text of one available transcription (``{id}.txt``)."""
        return await self.get_text(
            f"{self._transcriptions}/{transcription_id}.txt",
            what=f"transcription {transcription_id!r}",
        )

    async def request_transcription(self, recording_id: str, locale: str) -> Transcription:
        payload = await self.post_json(
            self.recording_url(recording_id, "/transcriptions"),
            {"locale": locale},
            what=f"recording {recording_id!r}",
        )
        return self.transcription(payload, recording_id)

    def transcription(self, item: Mapping[str, Any], recording_id: str) -> Transcription:
        """One item of Bird's Transcription schema, or PROVIDER_BAD_RESPONSE."""
        try:
            transcription_id = item["id"]
            if not isinstance(transcription_id, str) or not UUID.fullmatch(transcription_id):
                raise ValueError("id is missing or not a UUID")
            provider_status = item.get("status")
            return Transcription(
                provider=self.provider,
                id=transcription_id,
                recording_id=parsing.text(item.get("recordingId")) or recording_id,
                status=parsing.transcription_status(TRANSCRIPTION_STATUSES, provider_status),
                provider_status=str(provider_status or ""),
                locale=parsing.text(item.get("locale")),
                created_at=parsing.rfc3339(item.get("createdAt")),
                updated_at=parsing.rfc3339(item.get("updatedAt")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise self.malformed(f"a transcription it could not read ({exc})") from exc


def rfc3339(moment: datetime, *, ceil: bool) -> str:
    """``2026-03-02T17:45:12.234Z``: Bird's millisecond precision, rounded outwards."""
    utc = moment.astimezone(UTC)
    whole_ms = utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    if ceil and whole_ms != utc:
        whole_ms += timedelta(milliseconds=1)
    return f"{whole_ms:%Y-%m-%dT%H:%M:%S}.{whole_ms.microsecond // 1000:03d}Z"


def presigned_expiry(url: httpx.URL) -> datetime | None:
    """When an S3 SigV4 query-string link stops working: ``X-Amz-Date`` + ``X-Amz-Expires``."""
    try:
        signed = datetime.strptime(url.params["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
        lifetime = int(url.params["X-Amz-Expires"])
    except (KeyError, ValueError):
        return None
    return signed.replace(tzinfo=UTC) + timedelta(seconds=lifetime)


def phone_number(party: Any) -> str | None:
    """E.164 of an originator/receiver: the number's identity, else the contact's phone."""
    if not isinstance(party, Mapping):
        return None
    number = party.get("number")
    if isinstance(number, Mapping):
        identity = number.get("identity")
        if isinstance(identity, str) and identity:
            return identity
    contact = party.get("contact")
    if isinstance(contact, Mapping) and contact.get("identifierKey") == "phonenumber":
        value = contact.get("identifierValue")
        if isinstance(value, str) and value:
            return value
    if isinstance(number, Mapping):
        digits = number.get("number")
        if isinstance(digits, str) and digits.isdigit():
            return f"+{digits}"
    return None
