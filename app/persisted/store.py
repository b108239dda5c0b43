"""Where APQ keeps the query text of each hash: the cache backend, so replicas share it.

With ``GATEWAY_CACHE_URL=redis://...`` the texts live in that Redis under
``rg:apq:<tenant>:<sha256>`` for ``TTL`` seconds, written by whichever replica saw the query
first and read by all. A failing Redis degrades to "not found" (logged once, as an
``Outage``): the client then resends the query, which runs, so the gateway keeps answering.

With ``memory`` (or ``none``, which turns off only the recording cache) they live in this
process, least recently used first out, bounded by their total characters as
``app.schema.documents`` bounds documents: aiocache's memory cache bounds by count only, and
one text may be up to ``GATEWAY_MAX_BODY_BYTES`` long.

Keys name the tenant (as a digest) besides the hash: a hash found or not would otherwise
tell one tenant whether another ever ran a query, literal recording ids and all.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any, Protocol

from app.cache import build_backend
from app.outages import COOLDOWN, Outage
from app.settings import CacheSettings

logger = logging.getLogger("app.persisted")

#: Seconds a query text stays in Redis after it was last registered.
TTL = 24 * 3600
#: Characters of query text the memory store holds (a few hundred typical queries).
MEMORY_CHARS = 2**22
MEMORY_ENTRIES = 10000


def key(tenant: str, sha256: str) -> str:
    """The one key builder: the tenant as a digest, then the query's hash."""
    scope = hashlib.sha256(f"apq|{tenant}".encode()).hexdigest()[:16]
    return f"rg:apq:{scope}:{sha256}"


class QueryStore(Protocol):
    """Query texts by key; ``get`` answers ``None`` for anything it cannot answer."""

    async def get(self, key: str) -> str | None: ...

    async def put(self, key: str, query: str) -> None: ...

    async def aclose(self) -> None: ...


class MemoryQueryStore:
    """This process's texts, least recently used dropped past ``max_chars`` or
    ``max_entries``; a text longer than ``max_chars`` is not kept."""

    def __init__(self, max_chars: int = MEMORY_CHARS, max_entries: int = MEMORY_ENTRIES) -> None:
        self.max_chars = max_chars
        self.max_entries = max_entries
        self.chars = 0
        self._entries: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: str) -> str | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    async def put(self, key: str, query: str) -> None:
        if len(query) > self.max_chars:
            return
        previous = self._entries.pop(key, None)
        if previous is not None:
            self.chars -= len(previous)
        self._entries[key] = query
        self.chars += len(query)
        while self.chars > self.max_chars or len(self._entries) > self.max_entries:
            _, dropped = self._entries.popitem(last=False)
            self.chars -= len(dropped)

    async def aclose(self) -> None:
        self._entries.clear()
        self.chars = 0


class BackendQueryStore:
    """Texts in an aiocache backend (Redis), each for ``ttl`` seconds."""

    def __init__(self, backend: Any, ttl: int = TTL, *, cooldown: float = COOLDOWN) -> None:
        self._backend = backend
        self._ttl = ttl
        self._outage = Outage(
            logger,
            "persisted-query store unavailable (%s); hashes are not found until it is back",
            "persisted-query store is back",
            cooldown=cooldown,
        )

    async def get(self, key: str) -> str | None:
        value = await self._outage.guard(lambda: self._backend.get(key), None)
        return value if isinstance(value, str) else None

    async def put(self, key: str, query: str) -> None:
        await self._outage.guard(lambda: self._backend.set(key, query, ttl=self._ttl), None)

    async def aclose(self) -> None:
        await self._backend.close()


def build_store(settings: CacheSettings) -> QueryStore:
    """Redis when the cache is Redis, else this process's memory."""
    if settings.kind == "redis":
        return BackendQueryStore(build_backend(settings), cooldown=settings.cooldown)
    return MemoryQueryStore()
