"""The status callbacks each provider sends when a recording changes, signed as it signs them.

- **Twilio** (`recordingStatusCallback`): a form-encoded POST of `AccountSid, CallSid,
  RecordingSid, RecordingUrl` (the extension-less media URL), `RecordingStatus,
  RecordingDuration, RecordingChannels, RecordingStartTime` (RFC 2822), `RecordingSource,
  RecordingTrack, ErrorCode` (0 when none), plus `ConferenceSid` for a conference recording.
  Sent for `in-progress`, `completed`, `absent` and `failed` (`processing` has no event).
  `X-Twilio-Signature` = base64(HMAC-SHA1(auth token, URL + each parameter's name and value,
  sorted by name)); `I-Twilio-Idempotency-Token` is the same on every retry of one event.
- **SignalWire**: the same callback (its own id formats and source spellings), signed the same
  way with the space's Signing Key, in `X-SignalWire-Signature` and, for Twilio libraries,
  `X-Twilio-Signature`.
- **Bird**: a webhook subscription's JSON delivery, `{"service", "event", "payload"}` (the
  envelope of Bird's Notifications API). Bird documents no recording event (its voice events
  are the call lifecycle's `voice.inbound`/`voice.outbound`), so the sandbox names its own,
  `RECORDING_EVENT`, and sends the recording resource as `GET .../recordings/{id}` returns it
  (less the presigned media `url`, minted per request and short-lived), on every status
  change. `MessageBird-Signature` = base64(HMAC-SHA256(signing key, timestamp, newline, URL,
  newline, the raw SHA-256 digest of the body)), the timestamp (Unix seconds) being
  `MessageBird-Request-Timestamp`, signed afresh on each attempt (a receiver refuses old
  timestamps, and Bird retries for hours); `MessageBird-Request-Id` names the event.

The signatures are computed here from the providers' published algorithms, on their own: the
gateway's verifier is tested against them, never the other way round.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from app.sandbox.config import SandboxAccount
from app.sandbox.data import SandboxRecording
from app.sandbox.render_bird import render_bird
from app.sandbox.web import Urls

#: The statuses Twilio and SignalWire call back for (`recordingStatusCallbackEvent`).
COMPAT_EVENTS = frozenset({"in-progress", "completed", "absent", "failed"})
#: The `event` of the sandbox's Bird deliveries (see the module's doc).
RECORDING_EVENT = "voice.recording"
BIRD_SERVICE = "channels"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def without_userinfo(url: str) -> str:
    """`url` without the `user:password@` Twilio accepts in a callback URL (it answers a 401
    challenge with them): what the receiver sees as its URL, what is signed, what is logged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def twilio_signature(key: str, url: str, params: Mapping[str, str]) -> str:
    """`X-Twilio-Signature` (and SignalWire's): base64 HMAC-SHA1 over the URL followed by
    every POST parameter's name and value, sorted by name."""
    payload = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(key.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def bird_signature(key: str, timestamp: str, url: str, body: bytes) -> str:
    """`MessageBird-Signature`: base64 HMAC-SHA256 over timestamp, URL and the body's raw
    SHA-256 digest, joined by newlines."""
    payload = f"{timestamp}\n{url}\n".encode() + hashlib.sha256(body).digest()
    return base64.b64encode(hmac.new(key.encode(), payload, hashlib.sha256).digest()).decode()


@dataclass(frozen=True, slots=True)
class Callback:
    """One event to deliver: where, what, and how to sign it. The key is left out of `repr()`."""

    provider: str
    url: str
    recording_id: str
    status: str
    body: bytes
    content_type: str
    #: The same on every attempt: Twilio's idempotency token, Bird's request id.
    event_id: str
    key: str = field(repr=False)
    params: Mapping[str, str] = field(default_factory=dict)

    def headers(self, now: datetime) -> dict[str, str]:
        """The headers of one attempt at `now` (Bird's signature covers the time), spelled as
        the providers spell them."""
        headers = {"Content-Type": self.content_type}
        url = without_userinfo(self.url)
        if self.provider == "bird":
            timestamp = str(int(now.timestamp()))
            headers["MessageBird-Signature"] = bird_signature(self.key, timestamp, url, self.body)
            headers["MessageBird-Request-Timestamp"] = timestamp
            headers["MessageBird-Request-Id"] = self.event_id
            return headers
        signature = twilio_signature(self.key, url, self.params)
        headers["X-Twilio-Signature"] = signature
        if self.provider == "signalwire":
            headers["X-SignalWire-Signature"] = signature
        else:
            headers["I-Twilio-Idempotency-Token"] = self.event_id
        return headers


def notifies(provider: str, status: str) -> bool:
    """Whether `provider` calls back when a recording reaches `status`."""
    return provider == "bird" or status in COMPAT_EVENTS


def callback_for(
    record: SandboxRecording, account: SandboxAccount, url: str, sandbox_url: str
) -> Callback:
    """The callback `record`'s provider sends to `url` for the record's current status;
    `sandbox_url` is where the sandbox is reached (the media links in it)."""
    event_id = str(uuid.uuid4())
    if record.provider == "bird":
        envelope = {
            "service": BIRD_SERVICE,
            "event": RECORDING_EVENT,
            "payload": render_bird(record, Urls(sandbox_url, ""), None),
        }
        body = json.dumps(envelope, separators=(",", ":")).encode()
        return Callback(
            "bird", url, record.id, record.status, body, JSON, event_id, account.signing_key
        )
    params = compat_params(record, sandbox_url)
    body = urlencode(params).encode()
    return Callback(
        record.provider,
        url,
        record.id,
        record.status,
        body,
        FORM,
        event_id,
        account.signing_key,
        params,
    )


def compat_params(record: SandboxRecording, sandbox_url: str) -> dict[str, str]:
    """Twilio's and SignalWire's `RecordingStatusCallback` parameters for `record`."""
    prefix = "" if record.provider == "twilio" else "/api/laml"
    media = f"{sandbox_url}{prefix}/2010-04-01/Accounts/{record.account}/Recordings/{record.id}"
    running_duration = "-1" if record.provider == "twilio" else "0"  # as their REST APIs say
    params = {"AccountSid": record.account}
    if record.call_id is not None:
        params["CallSid"] = record.call_id
    if record.conference_id is not None:
        params["ConferenceSid"] = record.conference_id
    params |= {
        "RecordingSid": record.id,
        "RecordingUrl": media,
        "RecordingStatus": record.status,
        "RecordingDuration": running_duration if record.running else str(record.duration),
        "RecordingChannels": str(record.channels),
        "RecordingStartTime": format_datetime((record.started or record.created).astimezone(UTC)),
        "RecordingSource": record.source,
        "RecordingTrack": "both",
        "ErrorCode": str(record.error_code or 0),
    }
    return params
