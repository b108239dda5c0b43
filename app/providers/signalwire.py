"""SignalWire's Twilio-compatible LaML API (``https://{space}/api/laml/2010-04-01``)."""

from __future__ import annotations

from datetime import datetime

import httpx

from app.models import MediaFormat, Provider
from app.providers.base import UUID, ProviderLink
from app.providers.laml import LamlProvider
from app.settings import SignalWireSettings


class SignalWireProvider(LamlProvider):
    """Recordings of one SignalWire project (the project id is the AccountSid)."""

    provider = Provider.SIGNALWIRE
    id_pattern = UUID
    id_description = "a UUID"

    @classmethod
    def from_settings(
        cls, client: httpx.AsyncClient, settings: SignalWireSettings
    ) -> SignalWireProvider:
        return cls(
            client,
            api_root=f"{settings.base_url}/api/laml/2010-04-01",
            account=settings.project_id,
            auth=httpx.BasicAuth(settings.project_id, str(settings.api_token)),
        )

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        """The public ``.mp3``/``.wav`` URL; SignalWire media needs no credentials. The URL
        itself never expires, so ``expires_at`` is advisory: when to mint a new one."""
        self.check_id(recording_id)
        return ProviderLink(self.media_url(recording_id, fmt), expires_at)
