"""SignalWire's Twilio-compatible LaML API (``https://{space}/api/laml/2010-04-01``)."""

from __future__ import annotations

import httpx

from app.models import Provider
from app.providers.base import UUID
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
