"""SignalWire's dialect of the Recordings API (the Compatibility "LaML" API)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from app.sandbox.compat import Dialect, Predicate, day_bounds, rfc2822, rfc2822_or_none
from app.sandbox.config import SandboxAccount, SandboxConfig
from app.sandbox.data import SandboxRecording
from app.sandbox.web import Urls

LAML_PREFIX = "/api/laml"


class SignalWireDialect(Dialect):
    """UUID ids, project-id Basic auth, public media, RFC 2822 instants in date filters."""

    provider = "signalwire"
    prefix = LAML_PREFIX
    realm = "SignalWire"
    envelope_has_start_end = False

    def credentials(self, account: SandboxAccount) -> set[tuple[str, str]]:
        return {(account.account, account.secret)}

    def media_needs_auth(self, config: SandboxConfig) -> bool:
        return False

    def date_filter(self, key: str, value: str) -> Predicate:
        moment = parse_rfc2822(value)
        if key == "DateCreated>":
            return lambda r: r.created >= moment
        if key == "DateCreated<":
            return lambda r: r.created <= moment
        first, last = day_bounds(moment)
        return lambda r: first <= r.created <= last

    def render(self, record: SandboxRecording, urls: Urls) -> dict[str, object]:
        return render_signalwire(record, urls)


def parse_rfc2822(value: str) -> datetime:
    """An RFC 2822 date (SignalWire's `Sept` accepted), as an aware datetime; ValueError if bad."""
    try:
        moment = parsedate_to_datetime(re.sub(r"\bSept\b", "Sep", value))
    except (TypeError, ValueError, IndexError) as exc:
        raise ValueError(value) from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def render_signalwire(record: SandboxRecording, urls: Urls) -> dict[str, object]:
    """The JSON of `GET /api/laml/2010-04-01/Accounts/{project}/Recordings/{sid}.json`.

    Spec-valid types: `channel`/`channels` strings, `duration` int, `error_code` string.
    """
    path = f"{LAML_PREFIX}/2010-04-01/Accounts/{record.account}/Recordings/{record.id}"
    channels = str(record.channels)
    return {
        "sid": record.id,
        "account_sid": record.account,
        "api_version": "2010-04-01",
        "call_sid": record.call_id,
        "conference_sid": record.conference_id,
        "channel": channels,
        "channels": channels,
        "date_created": rfc2822(record.created),
        "date_updated": rfc2822(record.updated),
        "start_time": rfc2822_or_none(record.started),
        "end_time": rfc2822_or_none(record.ended),
        "duration": 0 if record.running else record.duration,
        "price": None if record.price is None else f"{record.price:.4f}",
        "price_unit": record.price_unit,
        "source": record.source,
        "status": record.status,
        "error_code": None if record.error_code is None else str(record.error_code),
        "uri": urls.relative(f"{path}.json"),
        "subresource_uris": {"transcriptions": urls.relative(f"{path}/Transcriptions.json")},
        "encryption_details": None,
        "trim": record.trim,
    }
