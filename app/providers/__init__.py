"""Provider adapters, one module per vendor, and the registry that builds them."""

from __future__ import annotations

from app.models import Provider
from app.providers.bird import BirdProvider
from app.providers.protocol import RecordingProvider
from app.providers.signalwire import SignalWireProvider
from app.providers.twilio import TwilioProvider
from app.settings import Settings
from app.upstream.client import Upstream

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


def build_providers(settings: Settings, upstream: Upstream) -> dict[Provider, RecordingProvider]:
    """An adapter for each provider that has credentials in ``settings``."""
    providers: dict[Provider, RecordingProvider] = {}
    if settings.twilio is not None:
        providers[Provider.TWILIO] = TwilioProvider.from_settings(upstream, settings.twilio)
    if settings.signalwire is not None:
        providers[Provider.SIGNALWIRE] = SignalWireProvider.from_settings(
            upstream, settings.signalwire
        )
    if settings.bird is not None:
        providers[Provider.BIRD] = BirdProvider.from_settings(upstream, settings.bird)
    return providers
