"""A record as Bird's recording JSON (camelCase, RFC 3339 with milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.sandbox.data import SandboxRecording
from app.sandbox.web import Urls

#: Bird's "not set" timestamp.
ZERO_TIME = "0001-01-01T00:00:00Z"
COUNTRY_CODES = (("351", "PT"), ("31", "NL"), ("44", "GB"), ("49", "DE"), ("1", "US"))


def rfc3339(moment: datetime | None) -> str:
    """`2023-10-23T15:55:08.234Z`, or the zero value for an unset time."""
    if moment is None:
        return ZERO_TIME
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"


def country_of(e164: str) -> str:
    """ISO country of an E.164 number, from its calling code (enough for the sandbox numbers)."""
    digits = e164.lstrip("+")
    return next((iso for code, iso in COUNTRY_CODES if digits.startswith(code)), "ZZ")


def number(e164: str) -> dict[str, object]:
    """The `number` object of a party."""
    return {
        "type": "pstn",
        "number": e164.lstrip("+"),
        "identity": e164,
        "countryIsoCode": country_of(e164),
    }


def parties(record: SandboxRecording) -> tuple[dict[str, object], dict[str, object]]:
    """(originator, receiver); the contact belongs to the remote party."""
    originator: dict[str, object] = {"number": number(record.originator)}
    receiver: dict[str, object] = {"number": number(record.receiver)}
    if record.contact_id is not None:
        remote, e164 = (originator, record.originator)
        if record.direction == "outgoing":
            remote, e164 = (receiver, record.receiver)
        contact = {"id": record.contact_id, "identifierKey": "phonenumber", "identifierValue": e164}
        remote["contact"] = contact
    return originator, receiver


def source_id(record: SandboxRecording) -> str | None:
    """What `sourceId` names: the conference of a conference recording, else the call."""
    return record.conference_id if record.source == "conference" else record.call_id


def render_bird(
    record: SandboxRecording, urls: Urls, presigned_url: str | None
) -> dict[str, object]:
    """The JSON of `GET /workspaces/{ws}/recordings/{id}`; `url` only when media is ready."""
    originator, receiver = parties(record)
    body: dict[str, object] = {
        "id": record.id,
        "source": record.source,
        "sourceId": source_id(record),
        "channelId": record.channel_id,
        "status": record.status,
        "direction": record.direction,
        "originator": originator,
        "receiver": receiver,
        "origin": record.origin,
        "duration": 0 if record.running else record.duration,
        "format": "mp3",
        "stereo": record.channels == 2,
        "transcription": record.transcription,
    }
    if record.conference_id is not None:
        body["conferenceId"] = record.conference_id
        room = f"/workspaces/{record.account}/conferences/{record.conference_id}/room-info"
        body["roomInfoUrl"] = urls.absolute(room)
    if presigned_url is not None:
        body["url"] = presigned_url
    body["createdAt"] = rfc3339(record.created)
    body["updatedAt"] = rfc3339(record.updated)
    body["startedAt"] = rfc3339(record.started)
    body["endedAt"] = rfc3339(record.ended)
    return body
