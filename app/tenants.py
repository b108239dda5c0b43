"""The tenants a gateway serves, built once at start-up from ``Settings.tenant_settings()``.

A tenant is who a caller is: its credentials (``app.access``) name it, and everything the
request then touches is that tenant's: its ``RecordingService`` holds its provider accounts
only, and every key shared across tenants (cache entries, single-flight, cursors, media
tokens, rate-limit buckets) carries its name. All tenants share one upstream and one cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import limits

from app.cache import RecordingCache
from app.models import Provider
from app.providers import build_providers
from app.recordings import RecordingService
from app.settings import Settings
from app.upstream.client import Upstream


@dataclass(frozen=True)
class Tenant:
    """One tenant: its name, what it may do, how much, and its recordings."""

    name: str
    scopes: frozenset[str]
    rate_limit: limits.RateLimitItem | None
    recordings: RecordingService

    @property
    def providers(self) -> list[Provider]:
        return self.recordings.configured


class Tenants(Mapping[str, Tenant]):
    """Every tenant by name."""

    def __init__(self, tenants: Mapping[str, Tenant]) -> None:
        self._tenants = dict(tenants)

    @classmethod
    def build(cls, settings: Settings, upstream: Upstream, cache: RecordingCache) -> Tenants:
        tenants: dict[str, Tenant] = {}
        for name, tenant in settings.tenant_settings().items():
            providers = build_providers(tenant, upstream, settings.upstream)
            tenants[name] = Tenant(
                name=name,
                scopes=tenant.scopes,
                rate_limit=limits.parse(tenant.rate_limit) if tenant.rate_limit else None,
                recordings=RecordingService(providers, cache, tenant=name),
            )
        return cls(tenants)

    def __getitem__(self, name: str) -> Tenant:
        return self._tenants[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tenants)

    def __len__(self) -> int:
        return len(self._tenants)
