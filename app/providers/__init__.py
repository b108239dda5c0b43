"""The provider registry: one entry per ``Provider``, and the functions that read it.

An entry says which adapter class serves the provider, which ``Settings`` attribute holds
its section, how the adapter is built from that section, and the environment that points
it at the sandbox (``app.sandbox``). ``build_providers``, the id check, the demo
(``app.demo``) and the contract suite (``tests/test_contract.py``) all read ``REGISTRY``.

Adding a provider: a ``Provider`` member, an adapter module here (an ``HttpProvider``
that imports no settings), a section in ``Settings``, a dialect in ``app.sandbox``, and
one entry below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from app.models import Provider
from app.providers.bird import BirdProvider
from app.providers.protocol import RecordingProvider
from app.providers.signalwire import SignalWireProvider
from app.providers.twilio import TwilioProvider
from app.resilience import CallGuard, Resilience
from app.settings import (
    BirdSettings,
    Settings,
    SignalWireSettings,
    TenantSettings,
    TwilioSettings,
    UpstreamSettings,
)
from app.upstream.client import Upstream

if TYPE_CHECKING:  # the gateway never loads the sandbox unless it serves the demo
    from app.sandbox.config import SandboxConfig

__all__ = [
    "REGISTRY",
    "ProviderEntry",
    "RecordingProvider",
    "build_providers",
    "check_id",
    "configured",
    "sandbox_env",
]

S = TypeVar("S")


@dataclass(frozen=True)
class ProviderEntry(Generic[S]):
    """Everything the gateway needs to know about one provider, besides its adapter module."""

    #: The adapter class (its ``check_id`` runs even when the provider is not configured).
    adapter: type[RecordingProvider]
    #: The attribute of ``TenantSettings`` (and of ``Settings``, for the environment mode)
    #: holding the provider's section (None: not configured).
    section: str
    #: The adapter for one account, from its section, guarded by ``CallGuard``.
    build: Callable[[Upstream, S, UpstreamSettings, CallGuard], RecordingProvider]
    #: The environment an operator sets to point the provider at a sandbox serving a
    #: ``SandboxConfig`` at a base URL: the demo's configuration, and the tests'.
    sandbox: Callable[[SandboxConfig, str], dict[str, str]]

    def settings(self, settings: Settings | TenantSettings) -> S | None:
        """The provider's section of ``settings``, or None when it is not configured."""
        section: S | None = getattr(settings, self.section)
        return section


def _twilio(
    upstream: Upstream, settings: TwilioSettings, wire: UpstreamSettings, guard: CallGuard
) -> TwilioProvider:
    return TwilioProvider(
        upstream,
        api_root=f"{settings.base_url}/2010-04-01",
        account=settings.account_sid,
        auth=httpx.BasicAuth(settings.username, str(settings.password)),
        redirect_hosts=wire.media_redirect_hosts,
        max_body_bytes=wire.max_body_bytes,
        guard=guard,
    )


def _twilio_sandbox(config: SandboxConfig, url: str) -> dict[str, str]:
    return {
        "TWILIO_ACCOUNT_SID": config.twilio_account_sid,
        "TWILIO_AUTH_TOKEN": config.twilio_auth_token,
        "TWILIO_BASE_URL": url,
    }


def _signalwire(
    upstream: Upstream, settings: SignalWireSettings, wire: UpstreamSettings, guard: CallGuard
) -> SignalWireProvider:
    return SignalWireProvider(
        upstream,
        api_root=f"{settings.base_url}/api/laml/2010-04-01",
        account=settings.project_id,
        auth=httpx.BasicAuth(settings.project_id, str(settings.api_token)),
        redirect_hosts=wire.media_redirect_hosts,
        max_body_bytes=wire.max_body_bytes,
        guard=guard,
    )


def _signalwire_sandbox(config: SandboxConfig, url: str) -> dict[str, str]:
    return {
        "SIGNALWIRE_SPACE_URL": url,
        "SIGNALWIRE_PROJECT_ID": config.signalwire_project_id,
        "SIGNALWIRE_API_TOKEN": config.signalwire_api_token,
        "SIGNALWIRE_SIGNING_KEY": config.signalwire_signing_key,  # signs its callbacks
    }


def _bird(
    upstream: Upstream, settings: BirdSettings, wire: UpstreamSettings, guard: CallGuard
) -> BirdProvider:
    return BirdProvider(
        upstream,
        base_url=settings.base_url,
        workspace_id=settings.workspace_id,
        access_key=str(settings.access_key),
        redirect_hosts=wire.media_redirect_hosts,
        max_body_bytes=wire.max_body_bytes,
        guard=guard,
    )


def _bird_sandbox(config: SandboxConfig, url: str) -> dict[str, str]:
    return {
        "BIRD_WORKSPACE_ID": config.bird_workspace_id,
        "BIRD_ACCESS_KEY": config.bird_access_key,
        "BIRD_BASE_URL": url,
        "BIRD_WEBHOOK_SIGNING_KEY": config.bird_signing_key,  # signs its webhooks
    }


REGISTRY: Mapping[Provider, ProviderEntry[Any]] = {
    Provider.TWILIO: ProviderEntry(TwilioProvider, "twilio", _twilio, _twilio_sandbox),
    Provider.SIGNALWIRE: ProviderEntry(
        SignalWireProvider, "signalwire", _signalwire, _signalwire_sandbox
    ),
    Provider.BIRD: ProviderEntry(BirdProvider, "bird", _bird, _bird_sandbox),
}


def build_providers(
    tenant: TenantSettings, upstream: Upstream, wire: UpstreamSettings | None = None
) -> dict[Provider, RecordingProvider]:
    """An adapter for each provider that ``tenant`` has credentials for; ``wire`` gives the
    body cap, the extra media redirect hosts, the retries and the breakers
    (``Settings.upstream``). Each adapter has a ``CallGuard`` of its own: one per account."""
    wire = wire or UpstreamSettings()
    resilience = Resilience(
        timeout=upstream.timeout,
        attempts=wire.retry_attempts,
        retry_after_max=wire.retry_after_max,
        breaker_failures=wire.breaker_failures,
        breaker_cooldown=wire.breaker_cooldown,
    )
    providers: dict[Provider, RecordingProvider] = {}
    for name, entry in REGISTRY.items():
        section = entry.settings(tenant)
        if section is not None:
            guard = CallGuard(name, entry.adapter.label, resilience, tenant=tenant.name)
            providers[name] = entry.build(upstream, section, wire, guard)
    return providers


def configured(settings: Settings) -> list[Provider]:
    """The providers some tenant of ``settings`` has credentials for."""
    tenants = settings.tenant_settings().values()
    return [
        name
        for name, entry in REGISTRY.items()
        if any(entry.settings(tenant) is not None for tenant in tenants)
    ]


def check_id(provider: Provider, recording_id: str) -> None:
    """BadUserInputError unless ``recording_id`` has ``provider``'s id format.

    The one id check of a request: it needs no configured provider, so bad input is
    refused before anything else is looked at.
    """
    REGISTRY[provider].adapter.check_id(recording_id)


def sandbox_env(config: SandboxConfig, url: str) -> dict[str, str]:
    """The environment that points every provider at a sandbox serving ``config`` at ``url``."""
    return {
        name: value
        for entry in REGISTRY.values()
        for name, value in entry.sandbox(config, url).items()
    }
