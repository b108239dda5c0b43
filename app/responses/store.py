"""Where whole answers are kept: in the process (``memory://``) or in Redis (``redis://``,
shared by every replica), with a tag index for purging.

**Tags.** Each answer is tagged with the cache keys of the recordings it holds
(``RecordingCache.key``). The index is a set per recording: tag key (``RecordingCache.tag_key``)
-> the keys of the answers holding it. ``purge(recording_keys)`` takes each set and deletes it
and every answer it names. In Redis that is ``SMEMBERS`` + ``DEL`` of the set in one
``MULTI`` (an answer tagged while the purge runs is either in the set taken, or in a new set
a later purge takes: never dropped from the index unpurged), then one ``DEL`` of the answers;
so a purge by any replica reaches every replica's next read. A set lives as long as the
longest-lived answer could (the recording cache's longest TTL), renewed by each answer
added; an answer that expired first leaves its key in the set, harmless (deleting a missing
key is a no-op). In memory the index is a plain dict, pruned as answers leave.

Chosen over a per-recording version embedded in each entry (checked on read with one
``MGET``): tags cost nothing on a hit, which is the path this cache exists for; purges are
rare (a recording changing state).

**Entries** are the answer's bytes, untouched, after one line of JSON metadata (until when
it is fresh, the request's cost, its content type, the HTTP ``no-store`` reason): no
decode/encode of the body on a hit. An entry is read as a miss once its ``until`` has
passed by the cache's clock (the backend's own expiry is only its garbage collection).

**Outages**: a failing Redis is bypassed (every request is then a miss) for the cache's
cool-down, logged once (``app.outages``): the response cache never fails a request.

Known window: an answer built from a recording while a listing stores that recording's
new state may be tagged after the purge; it then lives until its (short) TTL, as the
recording cache's own single-flight write could.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.cache import RecordingCache
from app.outages import Outage
from app.settings import CacheSettings

logger = logging.getLogger("app.responses")


@dataclass(frozen=True)
class Stored:
    """One kept answer: its body, until when it is fresh (unix seconds), what running it
    cost (charged again on a hit), its content type, and why an HTTP client must not store
    it (an active recording in it), if so."""

    body: bytes
    until: float
    cost: int
    content_type: str
    no_store_reason: str | None = None

    def encode(self) -> bytes:
        meta = {
            "until": self.until,
            "cost": self.cost,
            "type": self.content_type,
            "no_store": self.no_store_reason,
        }
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def decode(cls, value: bytes) -> Stored:
        """The inverse of ``encode``; ValueError (or KeyError/TypeError) if it is not one."""
        head, separator, body = value.partition(b"\n")
        if not separator:
            raise ValueError("no metadata line")
        meta = json.loads(head)
        return cls(
            body,
            float(meta["until"]),
            int(meta["cost"]),
            str(meta["type"]),
            None if meta["no_store"] is None else str(meta["no_store"]),
        )


class Backend(Protocol):
    async def get(self, key: str) -> bytes | Stored | None: ...

    async def put(self, key: str, stored: Stored, ttl: float, tags: Collection[str]) -> None: ...

    async def purge(self, tags: Sequence[str]) -> None: ...

    async def aclose(self) -> None: ...


class MemoryBackend:
    """Per process, least recently used evicted past ``max_entries``."""

    def __init__(self, max_entries: int) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Stored, Collection[str]]] = OrderedDict()
        self._tagged: dict[str, set[str]] = {}

    async def get(self, key: str) -> Stored | None:
        found = self._entries.get(key)
        if found is None:
            return None
        self._entries.move_to_end(key)
        return found[0]

    async def put(self, key: str, stored: Stored, ttl: float, tags: Collection[str]) -> None:
        self._drop(key)
        self._entries[key] = (stored, tags)
        for tag in tags:
            self._tagged.setdefault(tag, set()).add(key)
        while len(self._entries) > self._max_entries:
            self._drop(next(iter(self._entries)))

    async def purge(self, tags: Sequence[str]) -> None:
        for tag in tags:
            for key in self._tagged.pop(tag, set()):
                self._drop(key)

    async def aclose(self) -> None:
        self._entries.clear()
        self._tagged.clear()

    def _drop(self, key: str) -> None:
        found = self._entries.pop(key, None)
        if found is None:
            return
        for tag in found[1]:
            keys = self._tagged.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tagged[tag]


class RedisBackend:
    """Shared by every replica; ``tag_ttl``: seconds a tag set outlives its last answer."""

    def __init__(self, client: redis.asyncio.Redis, tag_ttl: int) -> None:
        self._client = client
        self._tag_ttl = tag_ttl

    async def get(self, key: str) -> bytes | None:
        value = await self._client.get(key)
        return value if isinstance(value, bytes) else None  # not decoded: no decode_responses

    async def put(self, key: str, stored: Stored, ttl: float, tags: Collection[str]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.set(key, stored.encode(), px=max(math.ceil(ttl * 1000), 1))
            for tag in tags:
                pipe.sadd(tag, key)
                pipe.expire(tag, self._tag_ttl)
            await pipe.execute()

    async def purge(self, tags: Sequence[str]) -> None:
        async with self._client.pipeline(transaction=True) as pipe:
            for tag in tags:
                pipe.smembers(tag)
            pipe.delete(*tags)
            results: list[Any] = await pipe.execute()
        keys = {key for members in results[:-1] for key in members}
        if keys:
            await self._client.delete(*keys)

    async def aclose(self) -> None:
        await self._client.aclose()


class ResponseCache:
    """Whole answers by ``RecordingCache.response_key``, tagged with their recordings."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        cooldown: float = 5.0,
        outage: Outage | None = None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        # The recording cache's, when both are on one Redis (``app.main``): one frozen Redis
        # then costs one timeout per cool-down, not one per cache.
        self._outage = outage or Outage(
            logger,
            "response cache down (%s): no answer is kept or reused until it is back",
            "response cache back: answers are kept again",
            cooldown=cooldown,
        )

    @classmethod
    def from_settings(
        cls,
        enabled: bool,
        settings: CacheSettings,
        *,
        clock: Callable[[], float] = time.time,
        outage: Outage | None = None,
    ) -> ResponseCache | None:
        """The response cache ``GATEWAY_RESPONSE_CACHE`` and ``GATEWAY_CACHE_URL`` ask for;
        None when it is off or there is no cache (``none://``)."""
        if not enabled or settings.kind == "none":
            return None
        backend: Backend
        if settings.kind == "memory":
            backend = MemoryBackend(settings.max_entries)
        else:
            client = redis.asyncio.Redis(
                host=settings.host,
                port=settings.port,
                db=settings.db,
                password=str(settings.password) if settings.password else None,
                socket_timeout=settings.timeout,
                socket_connect_timeout=settings.timeout,
                retry=Retry(NoBackoff(), 0),  # a failed call is a miss; never wait longer
            )
            # An answer lives at most as long as its recordings' longest TTL.
            backend = RedisBackend(client, max(settings.ttl, settings.ttl_active, 1))
        return cls(backend, clock=clock, cooldown=settings.cooldown, outage=outage)

    async def get(self, key: str) -> Stored | None:
        """The answer kept under ``key`` while it is fresh, else None."""
        backend = self._backend
        value = await self._outage.guard(lambda: backend.get(key), None)
        if value is None:
            return None
        if isinstance(value, bytes):
            try:
                value = Stored.decode(value)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("ignoring an unreadable response cache entry (%s)", exc)
                return None
        return value if self._clock() < value.until else None

    async def put(self, key: str, stored: Stored, tags: Collection[str]) -> bool:
        """Keep ``stored`` until its ``until``, tagged with ``tags`` (recording cache keys);
        whether it was kept (not when already expired, nor during an outage)."""
        ttl = stored.until - self._clock()
        if ttl <= 0 or not tags:
            return False
        backend = self._backend
        index = [RecordingCache.tag_key(tag) for tag in tags]

        async def put() -> bool:
            await backend.put(key, stored, ttl, index)
            return True

        return await self._outage.guard(put, False)

    async def purge(self, recording_keys: Iterable[str]) -> None:
        """Drop every answer holding any of these recordings (``RecordingCache.key``), for
        every replica sharing the backend."""
        tags = [RecordingCache.tag_key(key) for key in recording_keys]
        if not tags:
            return
        backend = self._backend

        async def purge() -> None:
            await backend.purge(tags)

        await self._outage.guard(purge, None)

    async def aclose(self) -> None:
        await self._backend.aclose()
