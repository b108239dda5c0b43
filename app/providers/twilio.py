"""Twilio's Recordings API (``https://api.twilio.com/2010-04-01``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from app.errors import MediaDirectUnavailableError
from app.models import ListQuery, MediaFormat, Provider
from app.providers.laml import LamlProvider
from app.providers.protocol import ProviderLink


class TwilioProvider(LamlProvider):
    """Recordings of one Twilio account (auth token or API key)."""

    provider = Provider.TWILIO
    label = "Twilio"
    id_pattern = re.compile(r"^RE[0-9a-fA-F]{32}$")
    id_description = "RE followed by 32 hex digits"
    call_id_pattern = re.compile(r"^CA[0-9a-fA-F]{32}$")
    conference_id_pattern = re.compile(r"^CF[0-9a-fA-F]{32}$")

    def date_params(self, query: ListQuery) -> dict[str, str]:
        """Whole UTC days, both inclusive: the days holding the bounds (a superset)."""
        params: dict[str, str] = {}
        if query.created_after is not None:
            params["DateCreated>"] = query.created_after.astimezone(UTC).date().isoformat()
        if query.created_before is not None:
            # The bound is exclusive: a recording at 00:00:00 sharp belongs to the day before.
            last = query.created_before.astimezone(UTC) - timedelta(microseconds=1)
            params["DateCreated<"] = last.date().isoformat()
        return params

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        raise MediaDirectUnavailableError(
            "Twilio media may require HTTP auth with the account's credentials, which never "
            "leave the gateway; use delivery: PROXY",
            provider=self.provider,
        )
