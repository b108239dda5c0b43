"""Provider adapters, one module per vendor, and the registry that builds them."""

from __future__ import annotations

import httpx

from app.models import Provider
from app.providers.bird import BirdProvider
from app.providers.protocol import RecordingProvider
from app.providers.signalwire import SignalWireProvider
from app.providers.twilio import TwilioProvider
from app.settings import Settings

__all__ = [
    "ADAPTERS",
    "BirdProvider",
    "RecordingProvider",
    "SignalWireProvider",
    "TwilioProvider",
    "build_providers",
]


ADAPTERS: dict[Provider, type[TwilioProvider | SignalWireProvider | BirdProvider]] = {
    Provider.TWILIO: TwilioProvider,
    Provider.SIGNALWIRE: SignalWireProvider,
    Provider.BIRD: BirdProvider,
}


def build_providers(
    settings: Settings, client: httpx.AsyncClient
) -> dict[Provider, RecordingProvider]:
    """An adapter for each provider that has credentials in ``settings``."""
    providers: dict[Provider, RecordingProvider] = {}
    if settings.twilio is not None:
        providers[Provider.TWILIO] = TwilioProvider.from_settings(client, settings.twilio)
    if settings.signalwire is not None:
        providers[Provider.SIGNALWIRE] = SignalWireProvider.from_settings(
            client, settings.signalwire
        )
    if settings.bird is not None:
        providers[Provider.BIRD] = BirdProvider.from_settings(client, settings.bird)
    return providers
