"""The recording service: the one path every query takes from a ref to a Recording.

Order of checks, cheapest first, so bad input never costs an upstream request:
the id's format, then whether the provider is configured, then the cache (with
single-flight), and only then the provider. The id's format is checked here and only
here (``app.providers.check_id``, from the registry: it needs no configured provider);
the adapter is handed an id that has passed it.

A service belongs to one tenant: it holds that tenant's adapters only, and everything it
shares with other tenants (the cache, its single-flight) is keyed by ``scope``, which names
the tenant as well as the account, so two tenants never share an entry, even for one account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence

from app.cache import Fresh, KeyScope, RecordingCache
from app.errors import ProviderNotConfiguredError
from app.models import Provider, Recording, RecordingRef
from app.providers import RecordingProvider, check_id


class RecordingService:
    """Reads recordings from the configured providers, through the cache."""

    def __init__(
        self,
        providers: Mapping[Provider, RecordingProvider],
        cache: RecordingCache | None = None,
        *,
        tenant: str = "default",
    ) -> None:
        self.tenant = tenant
        self._providers = dict(providers)
        self._cache = cache or RecordingCache(None)
        # The account part of every cache key, hashed once: an adapter's account never changes.
        self._key_scopes = {
            name: RecordingCache.scoped(name, self.scope(name)) for name in self._providers
        }

    @property
    def cache(self) -> RecordingCache:
        """The cache this service reads through (shared by every tenant: key it by tenant)."""
        return self._cache

    @property
    def configured(self) -> list[Provider]:
        return list(self._providers)

    def provider(self, name: Provider) -> RecordingProvider:
        """The adapter for ``name``, or PROVIDER_NOT_CONFIGURED."""
        try:
            return self._providers[name]
        except KeyError:
            raise ProviderNotConfiguredError(
                f"{name.name} is not configured for this tenant (set its credentials)",
                provider=name,
            ) from None

    def scope(self, provider: Provider) -> str:
        """The tenant and the provider account it reads there (PROVIDER_NOT_CONFIGURED if none):
        what cache keys, single-flight and media links are scoped to."""
        return f"{self.tenant}|{self.provider(provider).endpoint_account}"

    def key_scope(self, provider: Provider) -> KeyScope:
        """The account part of the cache keys of ``provider``'s recordings for this tenant
        (PROVIDER_NOT_CONFIGURED if none)."""
        try:
            return self._key_scopes[provider]
        except KeyError:
            self.provider(provider)  # raises PROVIDER_NOT_CONFIGURED
            raise

    async def get(self, provider: Provider, recording_id: str) -> Recording:
        """One recording, or a GatewayError (NOT_FOUND when the provider has none)."""
        return (await self.fetch(provider, recording_id)).recording

    async def fetch(self, provider: Provider, recording_id: str) -> Fresh:
        """``get``, with the instant the answer stops being fresh (its cache entry's expiry)."""
        check_id(provider, recording_id)
        adapter = self.provider(provider)
        key = self._cache.key(self._key_scopes[provider], recording_id)
        return await self._cache.fetch(key, lambda: adapter.fetch(recording_id))

    async def get_many(self, refs: Sequence[RecordingRef]) -> list[Recording | BaseException]:
        """Each ref's recording or error, in order, all providers queried concurrently."""
        return [
            found.recording if isinstance(found, Fresh) else found
            for found in await self.fetch_many(refs)
        ]

    async def fetch_many(self, refs: Sequence[RecordingRef]) -> list[Fresh | BaseException]:
        """``get_many``, each recording with the instant it stops being fresh."""
        return await asyncio.gather(
            *(self.fetch(ref.provider, ref.id) for ref in refs), return_exceptions=True
        )

    async def remember(self, recordings: Iterable[Recording]) -> None:
        """Cache recordings read some other way (a listing), so a later get is a hit.

        Written concurrently: a page of 100 must not cost 100 sequential Redis round trips.
        """
        await asyncio.gather(
            *(
                self._cache.store(self._cache.key(self.key_scope(r.provider), r.id), r)
                for r in recordings
            )
        )
