"""What the gateway has already seen of the providers' webhooks, for ``ttl`` seconds.

``claim(parts)`` is True the first time a key is claimed within its TTL and False after: the
delivery (or the event) is then a repeat, acknowledged and ignored. Keys are a hash of their
parts (tenant, provider, what, id, status), ``rg:wh:v1:<sha256>``: nothing readable, never a
secret.

With ``GATEWAY_CACHE_URL=redis://`` the claim is Redis' ``SET key 1 NX EX ttl``, atomic, so
two replicas receiving the same delivery (a provider's retry can reach either) claim it once.
Each claim is also kept in this process's bounded memory, which decides alone while Redis is
down (the cache's ``Outage``: logged once, bypassed for its cool-down): a retry reaching the
same replica is still caught, and the webhook never fails because Redis did. With the memory
cache the process's memory is all there is: one replica.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.outages import Outage
from app.settings import CacheSettings

KEY_PREFIX = "rg:wh:v1:"
#: Claims kept in memory; past it, the oldest go first.
MEMORY_ENTRIES = 100_000


def key(parts: Iterable[str]) -> str:
    """The one key builder."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return KEY_PREFIX + digest


class MemorySeen:
    """Claims in this process, each for ``ttl`` seconds, at most ``max_entries``."""

    def __init__(
        self,
        ttl: int,
        max_entries: int = MEMORY_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._until: OrderedDict[str, float] = OrderedDict()  # in order of expiry

    def __len__(self) -> int:
        return len(self._until)

    def claim(self, name: str) -> bool:
        now = self._clock()
        while self._until and next(iter(self._until.values())) <= now:
            self._until.popitem(last=False)
        if name in self._until:
            return False
        self._until[name] = now + self._ttl
        while len(self._until) > self._max_entries:
            self._until.popitem(last=False)
        return True

    def release(self, name: str) -> None:
        self._until.pop(name, None)


class Seen:
    """Claims shared by every replica through Redis when there is one, else in memory."""

    def __init__(
        self,
        memory: MemorySeen,
        client: Any | None = None,
        outage: Outage | None = None,
        *,
        ttl: int = 0,
    ) -> None:
        self._memory = memory
        self._client = client
        self._outage = outage
        self._ttl = ttl

    @classmethod
    def from_settings(cls, cache: CacheSettings, ttl: int, outage: Outage) -> Seen:
        """Redis when the cache is Redis (sharing the cache's outage guard), else memory."""
        memory = MemorySeen(ttl)
        if cache.kind != "redis":
            return cls(memory)
        client = redis.asyncio.Redis(
            host=cache.host,
            port=cache.port,
            db=cache.db,
            password=str(cache.password) if cache.password else None,
            socket_timeout=cache.timeout,
            socket_connect_timeout=cache.timeout,
            retry=Retry(NoBackoff(), 0),  # a failed call falls back to memory; never wait longer
        )
        return cls(memory, client, outage, ttl=ttl)

    async def claim(self, *parts: str) -> bool:
        """True the first time ``parts`` are claimed (within the TTL), False after."""
        name = key(parts)
        first_here = self._memory.claim(name)
        if self._client is None or self._outage is None:
            return first_here
        client, ttl = self._client, self._ttl

        async def claim() -> bool | None:
            return bool(await client.set(name, b"1", nx=True, ex=ttl))

        shared = await self._outage.guard(claim, None)
        return first_here if shared is None else shared

    async def release(self, *parts: str) -> None:
        """Forget a claim (its work failed: a redelivery must not be ignored)."""
        name = key(parts)
        self._memory.release(name)
        if self._client is not None and self._outage is not None:
            client = self._client

            async def release() -> None:
                await client.delete(name)

            await self._outage.guard(release, None)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
