"""Twilio's Recordings API (``https://api.twilio.com/2010-04-01``)."""

from __future__ import annotations

import re
from datetime import datetime

import httpx

from app.errors import MediaDirectUnavailableError
from app.models import MediaFormat, Provider
from app.providers.base import ProviderLink
from app.providers.laml import LamlProvider
from app.settings import TwilioSettings


class TwilioProvider(LamlProvider):
    """Recordings of one Twilio account (auth token or API key)."""

    provider = Provider.TWILIO
    id_pattern = re.compile(r"^RE[0-9a-fA-F]{32}$")
    id_description = "RE followed by 32 hex digits"

    @classmethod
    def from_settings(cls, client: httpx.AsyncClient, settings: TwilioSettings) -> TwilioProvider:
        return cls(
            client,
            api_root=f"{settings.base_url}/2010-04-01",
            account=settings.account_sid,
            auth=httpx.BasicAuth(settings.username, str(settings.password)),
        )

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        raise MediaDirectUnavailableError(
            "Twilio media may require HTTP auth with the account's credentials, which never "
            "leave the gateway; use delivery: PROXY",
            provider=self.provider,
        )
