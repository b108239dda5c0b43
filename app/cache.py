"""The recording cache: aiocache underneath, with the gateway's rules on top.

- **Keys** are built in one place (``RecordingCache.key``): a format version, the
  provider, a hash of the provider endpoint + account (tenants never share an entry;
  no account or secret in clear), and the recording id.
- **TTL policy**: terminal recordings long, others short, NOT_FOUND briefly (stored as
  a sentinel, since aiocache reads a cached ``None`` as a miss); no other error is cached.
- **Single-flight**: concurrent misses for one key share one upstream fetch.
- **Outages**: a failing backend (Redis gone) degrades to "no cache", logged once,
  and recovers by itself when the backend answers again.

Values are JSON, not pickle: a shared Redis must not be able to run code in the gateway.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiocache import RedisCache, SimpleMemoryCache
from aiocache.serializers import StringSerializer

from app.errors import RecordingNotFoundError
from app.models import CallDirection, MediaFormat, Money, Provider, Recording, RecordingStatus
from app.settings import CacheSettings

logger = logging.getLogger("app.cache")

# Bump when the stored shape changes: old entries are then simply never read.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class TtlPolicy:
    """Seconds to keep each kind of entry; 0 means do not cache it."""

    terminal: int = 3600
    active: int = 5
    not_found: int = 30

    def for_recording(self, recording: Recording) -> int:
        return self.terminal if recording.status.is_terminal else self.active


class BoundedMemoryCache(SimpleMemoryCache):  # type: ignore[misc]
    """aiocache's memory cache with a least-recently-used bound (0.12 has none)."""

    def __init__(self, max_entries: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_entries = max_entries

    async def _get(self, key: str, encoding: str = "utf-8", _conn: Any = None) -> Any:
        if key in self._cache:
            self._cache[key] = self._cache.pop(key)  # now the most recently used
        return self._cache.get(key)

    async def _set(self, key: str, value: Any, ttl: Any = None, **kwargs: Any) -> Any:
        self._cache.pop(key, None)
        result = await super()._set(key, value, ttl=ttl, **kwargs)
        while len(self._cache) > self.max_entries:
            await self._delete(next(iter(self._cache)))
        return result


class CurrentRedisCache(RedisCache):  # type: ignore[misc]
    """aiocache's RedisCache on today's redis-py: aiocache 0.12 still calls ``setex`` and
    ``close``, which redis-py 5+ deprecates in favour of ``set(ex=...)`` and ``aclose``."""

    async def _set(self, key: str, value: Any, ttl: Any = None, **kwargs: Any) -> Any:
        if isinstance(ttl, int) and ttl > 0 and kwargs.get("_cas_token") is None:
            return await self.client.set(key, value, ex=ttl)
        return await super()._set(key, value, ttl=ttl, **kwargs)

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        await self.client.aclose()


def build_backend(settings: CacheSettings, timeout: float = 1.0) -> Any | None:
    """The aiocache backend for ``GATEWAY_CACHE_URL``; ``None`` for ``none://``."""
    if settings.kind == "none":
        return None
    if settings.kind == "memory":
        return BoundedMemoryCache(
            settings.max_entries, serializer=StringSerializer(), timeout=timeout
        )
    return CurrentRedisCache(
        endpoint=settings.host,
        port=settings.port,
        db=settings.db,
        password=str(settings.password) if settings.password else None,
        serializer=StringSerializer(),
        timeout=timeout,
        create_connection_timeout=timeout,
    )


class RecordingCache:
    """Recordings by provider account and id, shared by every request of the process."""

    def __init__(self, backend: Any | None, policy: TtlPolicy | None = None) -> None:
        self._backend = backend
        self._policy = policy or TtlPolicy()
        self._inflight: dict[str, asyncio.Future[Recording]] = {}
        self._healthy = True

    @classmethod
    def from_settings(cls, settings: CacheSettings) -> RecordingCache:
        policy = TtlPolicy(settings.ttl, settings.ttl_active, settings.ttl_not_found)
        return cls(build_backend(settings), policy)

    @staticmethod
    def key(provider: Provider, tenant: str, recording_id: str) -> str:
        """The one key builder. ``tenant`` names the account at its endpoint."""
        scope = hashlib.sha256(f"{provider.value}|{tenant}".encode()).hexdigest()[:24]
        return f"rg:v{FORMAT_VERSION}:{provider.value}:{scope}:{recording_id}"

    async def fetch(self, key: str, load: Callable[[], Awaitable[Recording]]) -> Recording:
        """The cached recording, else ``load()`` once for all concurrent callers, then cache."""
        cached = await self._read(key)
        if isinstance(cached, RecordingNotFoundError):
            raise cached
        if cached is not None:
            return cached
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._load(key, load))
            self._inflight[key] = flight
            flight.add_done_callback(lambda _: self._inflight.pop(key, None))
        return await asyncio.shield(flight)

    async def store(self, key: str, recording: Recording) -> None:
        """Cache a recording fetched elsewhere (e.g. from a listing)."""
        ttl = self._policy.for_recording(recording)
        if ttl and self._backend is not None:
            await self._write(key, encode(recording), ttl)

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()

    async def _load(self, key: str, load: Callable[[], Awaitable[Recording]]) -> Recording:
        try:
            recording = await load()
        except RecordingNotFoundError as exc:
            if self._policy.not_found:
                await self._write(key, encode_not_found(exc), self._policy.not_found)
            raise
        await self.store(key, recording)
        return recording

    async def _read(self, key: str) -> Recording | RecordingNotFoundError | None:
        if self._backend is None:
            return None
        try:
            value = await self._backend.get(key)
        except Exception as exc:  # any backend failure means "no cache", never a failed query
            self._failed(exc)
            return None
        self._succeeded()
        if value is None:
            return None
        try:
            return decode(value)
        except (KeyError, TypeError, ValueError):
            logger.warning("ignoring an unreadable cache entry")
            return None

    async def _write(self, key: str, value: str, ttl: int) -> None:
        if self._backend is None:
            return
        try:
            await self._backend.set(key, value, ttl=ttl)
        except Exception as exc:
            self._failed(exc)
        else:
            self._succeeded()

    def _failed(self, exc: Exception) -> None:
        if self._healthy:
            self._healthy = False
            logger.warning(
                "cache unavailable (%s); answering from the providers until it is back",
                type(exc).__name__,
            )

    def _succeeded(self) -> None:
        if not self._healthy:
            self._healthy = True
            logger.warning("cache is back; caching resumed")


def encode(recording: Recording) -> str:
    """A Recording as JSON text (the stored shape of FORMAT_VERSION)."""
    price = recording.price
    return json.dumps(
        {
            "provider": recording.provider.name,
            "id": recording.id,
            "status": recording.status.name,
            "providerStatus": recording.provider_status,
            "accountId": recording.account_id,
            "callId": recording.call_id,
            "conferenceId": recording.conference_id,
            "source": recording.source,
            "direction": recording.direction.name if recording.direction else None,
            "from": recording.from_,
            "to": recording.to,
            "channels": recording.channels,
            "durationSeconds": recording.duration_seconds,
            "startedAt": _time(recording.started_at),
            "endedAt": _time(recording.ended_at),
            "createdAt": _time(recording.created_at),
            "updatedAt": _time(recording.updated_at),
            "price": [str(price.amount), price.currency] if price else None,
            "errorCode": recording.error_code,
            "mediaFormats": [fmt.name for fmt in recording.media_formats],
            "raw": recording.raw,
        },
        separators=(",", ":"),
    )


def encode_not_found(error: RecordingNotFoundError) -> str:
    """A NOT_FOUND answer, kept so that it can be given again without asking."""
    provider = error.provider.name if error.provider else None
    return json.dumps({"notFound": {"provider": provider, "message": error.message}})


def decode(text: str) -> Recording | RecordingNotFoundError:
    """The inverse of ``encode`` and ``encode_not_found``."""
    data = json.loads(text)
    if "notFound" in data:
        missing = data["notFound"]
        name = missing["provider"]
        return RecordingNotFoundError(missing["message"], provider=Provider[name] if name else None)
    price = data["price"]
    direction = data["direction"]
    return Recording(
        provider=Provider[data["provider"]],
        id=data["id"],
        status=RecordingStatus[data["status"]],
        provider_status=data["providerStatus"],
        account_id=data["accountId"],
        call_id=data["callId"],
        conference_id=data["conferenceId"],
        source=data["source"],
        direction=CallDirection[direction] if direction else None,
        from_=data["from"],
        to=data["to"],
        channels=data["channels"],
        duration_seconds=data["durationSeconds"],
        started_at=_parse_time(data["startedAt"]),
        ended_at=_parse_time(data["endedAt"]),
        created_at=_parse_time(data["createdAt"]),
        updated_at=_parse_time(data["updatedAt"]),
        price=Money(Decimal(price[0]), price[1]) if price else None,
        error_code=data["errorCode"],
        media_formats=tuple(MediaFormat[name] for name in data["mediaFormats"]),
        raw=data["raw"],
    )


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
