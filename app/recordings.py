"""The recording service: the one path every query takes from a ref to a Recording.

Order of checks, cheapest first, so bad input never costs an upstream request:
the id's format, then whether the provider is configured, then the cache (with
single-flight), and only then the provider. The id's format is checked here and only
here (``app.providers.check_id``, from the registry: it needs no configured provider);
the adapter is handed an id that has passed it. A deletion (``delete``) is checked the same
way, then forgets the recording in the cache (``RecordingCache.forget``).

A service belongs to one tenant: it holds that tenant's adapters only, and everything it
shares with other tenants (the cache, its single-flight) is keyed by ``scope``, which names
the tenant as well as the account, so two tenants never share an entry, even for one account.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from app.cache import Fresh, KeyScope, RecordingCache
from app.errors import ProviderError, ProviderNotConfiguredError, RecordingNotFoundError
from app.models import Provider, Recording, RecordingRef
from app.providers import RecordingProvider, check_id
from app.providers.base import may_have_acted


@dataclass(frozen=True)
class Deletion:
    """What ``RecordingService.delete`` did: ``deleted`` by this call (else the provider had
    it gone already), and the recording as the cache last held it (None: it held none)."""

    deleted: bool
    last_known: Recording | None


@dataclass(frozen=True)
class Refreshed:
    """A recording as the provider gave it just now (None: it has it no more), and what
    the cache held before (None: nothing)."""

    recording: Recording | None
    previous: Recording | None


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
        """The cache this service reads through, shared by every tenant (key it by tenant):
        ``app.transcriptions`` and ``app.stats`` keep their entries in it too."""
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

    async def refresh(self, provider: Provider, recording_id: str) -> Refreshed:
        """Ask the provider for the recording again, whatever the cache holds (a webhook
        said it changed): one upstream call, shared with concurrent readers, and stored, so
        the next ``get`` is a hit with the new state (answers holding the old one are
        purged). ``recording`` is None when the provider has it no more (NOT_FOUND, cached
        as ``get`` caches it); other errors are raised."""
        check_id(provider, recording_id)
        adapter = self.provider(provider)
        key = self._cache.key(self._key_scopes[provider], recording_id)
        previous, fresh = await self._cache.reload(key, lambda: adapter.fetch(recording_id))
        return Refreshed(fresh.recording if fresh is not None else None, previous)

    async def get_many(self, refs: Sequence[RecordingRef]) -> list[Recording | BaseException]:
        """Each ref's recording or error, in order, all providers queried concurrently."""
        return [
            found.recording if isinstance(found, Fresh) else found
            for found in await self.fetch_many(refs)
        ]

    async def fetch_many(self, refs: Sequence[RecordingRef]) -> list[Fresh | BaseException]:
        """``get_many``, each recording with the instant it stops being fresh."""
        if len(refs) == 1:
            # One ``recording``: as gather's return_exceptions would answer, without the task
            # gather wraps each call in (~30 µs of CPU and an event-loop turn per request).
            try:
                return [await self.fetch(refs[0].provider, refs[0].id)]
            except Exception as exc:
                # Its traceback from the call down, as gather's task would hold it: without
                # this frame, whose ``refs`` the loader's batch holds too (a reference cycle
                # through the batch's futures: tests/test_no_cycles.py).
                if exc.__traceback__ is not None:
                    exc.__traceback__ = exc.__traceback__.tb_next
                return [exc]
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

    async def delete(self, provider: Provider, recording_id: str) -> Deletion:
        """Delete one recording at its provider, checked as ``fetch`` checks (id format, then
        configured), then forget it: its cache entry becomes NOT_FOUND and every cached answer
        holding it is purged. When the deletion failed after the request may have reached the
        provider, or was cancelled, the entry is dropped instead (the next read asks)."""
        check_id(provider, recording_id)
        adapter = self.provider(provider)
        key = self._cache.key(self._key_scopes[provider], recording_id)
        try:
            deleted = await adapter.delete(recording_id)
        except BaseException as exc:
            # Deleted all the same, maybe (its answer lost, or this request cut short while
            # the DELETE ran): the cached copy goes, the next read asks the provider.
            if not isinstance(exc, ProviderError) or may_have_acted(exc):
                await self._cache.forget(key)
            raise
        gone = RecordingNotFoundError(
            f"{adapter.label} has no recording {recording_id!r}", provider=provider
        )
        return Deletion(deleted, await self._cache.forget(key, gone))
