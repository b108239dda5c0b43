"""Twilio's dialect of the Recordings API (`api.v2010.account.recording`)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time

from starlette.requests import Request

from app.sandbox.compat import Dialect, Predicate, day_bounds, rfc2822
from app.sandbox.config import SandboxAccount, SandboxConfig
from app.sandbox.data import SandboxRecording
from app.sandbox.web import Urls

DAY_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class TwilioDialect(Dialect):
    """Ids `RE...`, Basic auth with the auth token or an API key, day-granular date filters."""

    provider = "twilio"
    prefix = ""
    realm = "Twilio API"
    envelope_has_start_end = True

    def credentials(self, account: SandboxAccount) -> set[tuple[str, str]]:
        pairs = {(account.account, account.secret)}
        if account.api_key is not None and account.api_secret is not None:
            pairs.add((account.api_key, account.api_secret))
        return pairs

    def media_needs_auth(self, config: SandboxConfig) -> bool:
        return config.twilio_media_auth

    def include_hidden(self, request: Request) -> bool:
        return request.query_params.get("IncludeSoftDeleted", "").lower() == "true"

    def date_filter(self, key: str, value: str) -> Predicate:
        if DAY_RE.match(value) is None:
            raise ValueError(value)
        first, last = day_bounds(datetime.combine(date.fromisoformat(value), time(), UTC))
        if key == "DateCreated>":
            return lambda r: r.created >= first
        if key == "DateCreated<":
            return lambda r: r.created <= last
        return lambda r: first <= r.created <= last

    def render(self, record: SandboxRecording, urls: Urls) -> dict[str, object]:
        return render_twilio(record, urls)


def render_twilio(record: SandboxRecording, urls: Urls) -> dict[str, object]:
    """The JSON of `GET /2010-04-01/Accounts/{AC}/Recordings/{RE}.json`."""
    path = f"/2010-04-01/Accounts/{record.account}/Recordings/{record.id}"
    return {
        "account_sid": record.account,
        "api_version": "2010-04-01",
        "call_sid": record.call_id,
        "conference_sid": record.conference_id,
        "channels": record.channels,
        "date_created": rfc2822(record.created),
        "date_updated": rfc2822(record.updated),
        "start_time": rfc2822(record.started or record.created),
        "price": None if record.price is None else f"{record.price:.5f}",
        "price_unit": record.price_unit,
        "duration": "-1" if record.running else str(record.duration),
        "sid": record.id,
        "source": record.source,
        "status": record.status,
        "error_code": record.error_code,
        "uri": urls.relative(f"{path}.json"),
        "subresource_uris": {
            "add_on_results": urls.relative(f"{path}/AddOnResults.json"),
            "transcriptions": urls.relative(f"{path}/Transcriptions.json"),
        },
        "encryption_details": None,
        "media_url": urls.absolute(path),
    }
