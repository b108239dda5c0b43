"""The recording cache: aiocache underneath, with the gateway's rules on top.

- **Keys** are built in one place (``RecordingCache.key``): a format version, a
  fingerprint of the stored shape, the provider, a hash of the scope (tenant, provider
  endpoint and account: tenants never share an entry; no account or secret in clear), and
  the recording id. All but the id is one account's ``KeyScope``, hashed once per account.
  The response cache's keys are built here too (``response_key``, ``tag_key``:
  ``app.responses``).
- **Changes**: a recording stored over one that differs from it (a refresh or a listing
  that finds a new state) is reported to the ``on_change`` hook with its key, after the
  write: the response cache purges every answer that held it (``app.responses``).
- **TTL policy**: terminal recordings long, others short, NOT_FOUND briefly (stored as
  a sentinel, since aiocache reads a cached ``None`` as a miss); no other error is cached.
- **Single-flight**: concurrent misses for one key share one upstream fetch; a forced
  ``reload`` (a provider webhook said the recording changed) shares it too.
- **Deletion** (``forget``): a deleted recording's entry becomes its NOT_FOUND (answers
  holding it purged); a fetch of it in the air then is not stored. Known window: a fetch
  by another replica in the air during the deletion may still store the old state for its
  TTL (nothing shared says it predates the deletion).
- **Transcriptions** of a recording are one entry of their own (``transcriptions_key``,
  beside the recording's key, tenant-scoped like it), with the same TTL policy: all of them
  settled (completed or failed) long, any still running short, none at all (yet) as briefly
  as NOT_FOUND. A change is told to ``on_change`` like a recording's; ``forget`` drops one
  (a transcription was just asked for). No stale window and no NOT_FOUND entry: an error
  reading them is not cached.
- **Freshness**: each entry keeps the instant it expires (``expires``, unix seconds), so a
  reader learns how long what it got stays fresh (``Fresh.expires``): the HTTP answer's
  ``Cache-Control: max-age`` is worked out from it (``app.schema.http_cache``).
- **Stale if error**: an entry is kept ``stale`` seconds past its TTL (the backend's TTL
  is the sum). Read after ``expires`` it is a miss: the provider is asked again; if that
  refresh fails with PROVIDER_UNAVAILABLE or PROVIDER_RATE_LIMITED (the provider is down or
  busy, so what we held is still the best answer there is), the old recording is returned
  marked ``Fresh.stale``. Never for NOT_FOUND, auth failures or a bad answer: those say
  something about the recording or the account, and a stale copy would hide it.
- **Outages**: a failing backend (Redis gone) degrades to "no cache", logged once,
  and recovers by itself when the backend answers again.
- **Metrics**: each lookup counts once in ``gateway_cache_lookups`` (hit, miss, stale, or
  bypassed during an outage); outages move ``gateway_cache_available`` and
  ``gateway_cache_outages``. A ``none://`` cache counts nothing.

Values are JSON, not pickle: a shared Redis must not be able to run code in the gateway.
They are encoded and decoded by msgspec from ``models.Recording``'s own type hints (the
one description of the shape); an entry that does not decode is a miss, with a warning.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec
from aiocache import RedisCache, SimpleMemoryCache
from aiocache.serializers import StringSerializer
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app import tracing
from app.errors import ProviderUnavailableError, RateLimitedError, RecordingNotFoundError
from app.metrics import CACHE_AVAILABLE, CACHE_LOOKUPS, CACHE_OUTAGES
from app.models import Provider, Recording, Transcription
from app.outages import COOLDOWN, Outage
from app.settings import CacheSettings

logger = logging.getLogger("app.cache")

# Bump when the key scheme or the envelope's encoding changes: old entries are then simply
# never read. Changes to models.Recording need no bump: SHAPE (below) follows them.
FORMAT_VERSION = 3
#: The response cache's keys (``app.responses``), apart from the recordings': its entries'
#: format is its own (bump the version when it changes).
RESPONSES_PREFIX = "rg:responses:v1:"
#: ``recordingStats`` answers of closed periods (``app.stats``); bump when their shape changes.
STATS_PREFIX = "rg:stats:v1:"


@dataclass(frozen=True)
class TtlPolicy:
    """Seconds to keep each kind of entry; 0 means do not cache it. ``stale``: seconds a
    recording is kept past its TTL, to be served only when a refresh fails (0: not kept)."""

    terminal: int = 3600
    active: int = 5
    not_found: int = 30
    stale: int = 86400

    def for_recording(self, recording: Recording) -> int:
        return self.terminal if recording.status.is_terminal else self.active

    def for_transcriptions(self, transcriptions: Sequence[Transcription]) -> int:
        """Settled ones long, running ones short, none (yet) as briefly as NOT_FOUND."""
        if not transcriptions:
            return self.not_found
        settled = all(t.status.is_terminal for t in transcriptions)
        return self.terminal if settled else self.active


@dataclass(frozen=True)
class Fresh:
    """A recording and the instant (unix seconds) its cache entry expires: until then the
    gateway answers with it unchanged. ``expires`` is now (or past) when it was not cached.
    ``stale``: past its TTL, served because the provider failed to give a newer one.
    ``key``: the cache key it is (or would be) stored under: what an answer holding it is
    tagged with (``app.responses``); empty when not known."""

    recording: Recording
    expires: float
    stale: bool = False
    key: str = field(default="", compare=False)


@dataclass(frozen=True)
class FreshTranscriptions:
    """A recording's transcriptions, newest first, and the instant (unix seconds) their
    cache entry expires; ``key`` as ``Fresh.key`` (what an answer holding them is tagged
    with)."""

    transcriptions: tuple[Transcription, ...]
    expires: float
    key: str = field(default="", compare=False)

    @property
    def settled(self) -> bool:
        """True when none of them will change any more (the answer may be cached)."""
        return all(t.status.is_terminal for t in self.transcriptions)


@dataclass(frozen=True, slots=True)
class KeyScope:
    """The part of a cache key that names one tenant's account at one provider
    (``RecordingCache.scoped``): a prefix, so that a key costs a concatenation, not a hash."""

    prefix: str


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


def build_backend(settings: CacheSettings, timeout: float | None = None) -> Any | None:
    """The aiocache backend for ``GATEWAY_CACHE_URL``; ``None`` for ``none://``.

    No aiocache ``timeout``: aiocache would wrap every call in ``asyncio.wait_for`` (a task
    per get on Python 3.11). A memory lookup cannot hang; Redis calls are bounded by redis-py's
    own socket timeouts instead (``timeout``, else ``GATEWAY_CACHE_TIMEOUT``, for the connect
    and for each reply), with no retry, so a frozen Redis costs one ``timeout`` and the
    ``Outage`` guard then bypasses it for the cool-down.
    """
    if timeout is None:
        timeout = settings.timeout
    if settings.kind == "none":
        return None
    if settings.kind == "memory":
        return BoundedMemoryCache(settings.max_entries, serializer=StringSerializer(), timeout=None)
    return CurrentRedisCache(
        endpoint=settings.host,
        port=settings.port,
        db=settings.db,
        password=str(settings.password) if settings.password else None,
        serializer=StringSerializer(),
        timeout=None,
        create_connection_timeout=timeout,  # redis-py's socket_connect_timeout
        connection_pool_kwargs={"socket_timeout": timeout, "retry": Retry(NoBackoff(), 0)},
    )


class RecordingCache:
    """Recordings by provider account and id, shared by every request of the process."""

    def __init__(
        self,
        backend: Any | None,
        policy: TtlPolicy | None = None,
        *,
        clock: Callable[[], float] = time.time,
        cooldown: float = COOLDOWN,
    ) -> None:
        self._backend = backend
        self._policy = policy or TtlPolicy()
        # Wall time, not the loop's: entries are shared through Redis by every replica.
        self._clock = clock
        self._inflight: dict[str, asyncio.Future[Fresh]] = {}
        # Flights of recordings deleted while they were in the air (``forget``): what they
        # bring back is not stored.
        self._void: set[asyncio.Future[Fresh]] = set()
        self._inflight_transcriptions: dict[str, asyncio.Future[FreshTranscriptions]] = {}
        #: Told the keys of recordings stored over a different state (``app.responses``).
        self.on_change: Callable[[Sequence[str]], Awaitable[None]] | None = None
        self._outage = Outage(
            logger,
            "cache unavailable (%s); answering from the providers until it is back",
            "cache is back; caching resumed",
            cooldown=cooldown,
            on_change=_report_availability,
        )
        if backend is not None:
            _report_availability(True)  # a new cache starts healthy, whatever one before did

    @property
    def outage(self) -> Outage:
        """The backend's outage guard: whatever else uses the same backend shares it."""
        return self._outage

    @classmethod
    def from_settings(
        cls, settings: CacheSettings, *, clock: Callable[[], float] = time.time
    ) -> RecordingCache:
        policy = TtlPolicy(
            settings.ttl, settings.ttl_active, settings.ttl_not_found, settings.stale_ttl
        )
        return cls(build_backend(settings), policy, clock=clock, cooldown=settings.cooldown)

    @staticmethod
    def scoped(provider: Provider, scope: str) -> KeyScope:
        """What every key of one account names: ``scope`` names the tenant and the account at
        its endpoint (``RecordingService.scope``), hashed. Worked out once per account
        (``RecordingService`` keeps one per provider), not per key."""
        digest = hashlib.sha256(f"{provider.value}|{scope}".encode()).hexdigest()[:24]
        return KeyScope(f"rg:v{FORMAT_VERSION}:{SHAPE}:{provider.value}:{digest}:")

    @staticmethod
    def key(scope: KeyScope, recording_id: str) -> str:
        """The one key builder: the account's part (``scoped``), then the recording id."""
        return scope.prefix + recording_id

    @staticmethod
    def transcriptions_key(scope: KeyScope, recording_id: str) -> str:
        """The key of a recording's transcriptions: the recording's key, then what it holds
        and the shape it is stored in (so entries of an older shape are never read)."""
        return f"{scope.prefix}{recording_id}:transcriptions:{TRANSCRIPTIONS_SHAPE}"

    @staticmethod
    def response_key(
        tenant: Sequence[str],
        scopes: Collection[str],
        document: str,
        operation_name: str | None,
        variables: Mapping[str, Any] | None,
    ) -> str:
        """The key of a whole GraphQL answer (``app.responses``): a hash of the tenant (its
        ``RecordingService.scope`` for each provider: its name and accounts), the caller's
        scopes, the document's SHA-256 (what a persisted query's hash names, so the hash and
        the full text find one entry), the operation name and the variables (canonical JSON:
        their order does not matter). Nothing in it is readable."""
        canonical = json.dumps(
            [
                tenant,
                sorted(scopes),
                hashlib.sha256(document.encode()).hexdigest(),
                operation_name,
                variables or {},
            ],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        return f"{RESPONSES_PREFIX}answer:{digest}"

    @staticmethod
    def tag_key(recording_key: str) -> str:
        """The key of the set of answers holding the recording stored at ``recording_key``."""
        digest = hashlib.sha256(recording_key.encode()).hexdigest()[:32]
        return f"{RESPONSES_PREFIX}tag:{digest}"

    @staticmethod
    def stats_key(tenant: Sequence[str], request: Mapping[str, Any]) -> str:
        """The key of a ``recordingStats`` answer (``app.stats``): a hash of the tenant (as in
        ``response_key``) and the request (filter, groupings, time zone) as canonical JSON.
        Nothing in it is readable."""
        canonical = json.dumps(
            [tenant, request], sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return f"{STATS_PREFIX}{hashlib.sha256(canonical.encode()).hexdigest()}"

    async def get_text(self, key: str) -> str | None:
        """A value kept by ``put_text``, or None (none, or the backend unavailable)."""
        if self._backend is None:
            return None
        backend = self._backend
        value = await self._outage.guard(lambda: backend.get(key), None)
        return value if isinstance(value, str) else None

    async def put_text(self, key: str, value: str, ttl: int) -> bool:
        """Keep ``value`` for ``ttl`` seconds beside the recordings (same backend, same outage
        guard); whether it was stored."""
        return await self._write(key, value, ttl) if ttl > 0 else False

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[Recording]]) -> Recording:
        """The cached recording, else ``load()`` once for all concurrent callers, then cache."""
        return (await self.fetch(key, load)).recording

    async def fetch(self, key: str, load: Callable[[], Awaitable[Recording]]) -> Fresh:
        """``get_or_load`` with the instant the answer stops being fresh; a recording past
        its TTL (``Fresh.stale``) when the refresh failed with the provider unavailable or
        rate limited and the entry is still within its stale window."""
        cached = await self._read(key)
        bypassed = not self._outage.healthy
        if isinstance(cached, RecordingNotFoundError):
            self._count("hit")
            try:
                raise cached
            finally:  # its traceback holds this frame: no cycle through the frame's local
                del cached
        now = self._clock()
        if cached is not None and now < cached.expires:
            self._count("hit")
            return replace(cached, key=key)
        # Past its TTL but within the stale window: kept in case the refresh fails.
        stale_until = cached.expires + self._policy.stale if cached is not None else now
        fallback = cached if now < stale_until else None
        flight = self._inflight.get(key)
        if flight is None:
            previous = cached.recording if cached is not None else None
            flight = asyncio.ensure_future(self._load(key, load, previous))
            self._inflight[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        result = "bypassed" if bypassed else "miss"
        try:
            return await asyncio.shield(flight)
        except (ProviderUnavailableError, RateLimitedError):
            if fallback is None:
                raise
            result = "stale"
            return Fresh(fallback.recording, now, stale=True, key=key)
        finally:
            self._count(result)

    async def reload(
        self, key: str, load: Callable[[], Awaitable[Recording]]
    ) -> tuple[Recording | None, Fresh | None]:
        """Ask the provider again whatever the cache holds (a webhook said the recording
        changed), store the answer and return what the key held before (None if nothing)
        with the new entry (None: the provider has it no more, NOT_FOUND is stored). One
        load for all: a fetch already in flight for the key is joined rather than doubled
        (it was asked after the change the webhook announces, or at most a round trip
        before it), and readers missing meanwhile join this one. ``on_change`` hears of a
        changed or vanished recording. Other errors are raised."""
        cached = await self._read(key)
        previous = cached.recording if isinstance(cached, Fresh) else None
        flight = self._inflight.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._load(key, load, previous))
            self._inflight[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        try:
            return previous, await asyncio.shield(flight)
        except RecordingNotFoundError:
            return previous, None

    async def store(self, key: str, recording: Recording) -> Fresh:
        """Cache a recording fetched elsewhere (e.g. from a listing); it is fresh for its
        TTL if it was stored, else not at all. With an ``on_change`` hook, what the key held
        is read first, to tell it when the recording changed."""
        previous = None
        if self.on_change is not None:
            cached = await self._read(key)
            previous = cached.recording if isinstance(cached, Fresh) else None
        return await self._store(key, recording, previous)

    async def _store(self, key: str, recording: Recording, previous: Recording | None) -> Fresh:
        """``store``, knowing what the key held (``previous``, None if nothing)."""
        now = self._clock()
        ttl = self._policy.for_recording(recording)
        if not ttl or self._backend is None:
            fresh = Fresh(recording, now, key=key)
        else:
            # Kept past its TTL for the stale window: ``fetch`` tells them apart by ``expires``.
            value = encode(recording, now + ttl)
            stored = await self._write(key, value, ttl + self._policy.stale)
            fresh = Fresh(recording, now + ttl if stored else now, key=key)
        if previous is not None and previous != recording and self.on_change is not None:
            await self.on_change([key])  # after the write: a miss now reads the new state
        return fresh

    async def forget(
        self, key: str, gone: RecordingNotFoundError | None = None
    ) -> Recording | None:
        """The recording at ``key`` was deleted: from now on it is ``gone`` (that NOT_FOUND,
        kept for the not-found TTL, answered without asking the provider); with ``gone`` None
        (it may have been deleted), the entry is dropped and the next read asks the provider.

        A fetch of it still in the air is not joined any more, and what it brings back is not
        stored (it may predate the deletion). Every cached answer holding it is purged
        (``on_change``, after the write). Returns the recording the entry held, if any."""
        flight = self._inflight.pop(key, None)
        if flight is not None:
            self._void.add(flight)
        cached = await self._read(key)
        previous = cached.recording if isinstance(cached, Fresh) else None
        if gone is not None and self._policy.not_found:
            await self._write(key, encode_not_found(gone), self._policy.not_found)
        else:
            await self._remove(key)
        if self.on_change is not None:
            await self.on_change([key])
        return previous

    def _landed(self, key: str, flight: asyncio.Future[Fresh]) -> None:
        """A flight ended: it stops being the key's (unless ``forget`` replaced it)."""
        if self._inflight.get(key) is flight:
            del self._inflight[key]
        self._void.discard(flight)

    async def fetch_transcriptions(
        self, key: str, load: Callable[[], Awaitable[tuple[Transcription, ...]]]
    ) -> FreshTranscriptions:
        """A recording's cached transcriptions, else ``load()`` once for all concurrent
        callers, then cached by ``TtlPolicy.for_transcriptions``."""
        cached = await self._read_transcriptions(key)
        bypassed = not self._outage.healthy
        now = self._clock()
        if cached is not None and now < cached.expires:
            self._count("hit")
            return replace(cached, key=key)
        flight = self._inflight_transcriptions.get(key)
        if flight is None:
            previous = cached.transcriptions if cached is not None else None
            flight = asyncio.ensure_future(self._load_transcriptions(key, load, previous))
            self._inflight_transcriptions[key] = flight
            flight.add_done_callback(lambda _: self._inflight_transcriptions.pop(key, None))
        try:
            return await asyncio.shield(flight)
        finally:
            self._count("bypassed" if bypassed else "miss")

    async def drop_transcriptions(self, key: str) -> None:
        """Drop the transcriptions entry at ``key`` (what it held is known to be out of date)
        and tell ``on_change``, so that no cached answer still holds it."""
        await self._remove(key)
        if self.on_change is not None:
            await self.on_change([key])

    async def _load_transcriptions(
        self,
        key: str,
        load: Callable[[], Awaitable[tuple[Transcription, ...]]],
        previous: tuple[Transcription, ...] | None,
    ) -> FreshTranscriptions:
        found = tuple(await load())
        now = self._clock()
        ttl = self._policy.for_transcriptions(found)
        stored = False
        if ttl and self._backend is not None:
            entry = _TranscriptionsEntry(transcriptions=found, expires=now + ttl)
            stored = await self._write(key, _ENCODER.encode(entry).decode(), ttl)
        fresh = FreshTranscriptions(found, now + ttl if stored else now, key=key)
        if previous is not None and previous != found and self.on_change is not None:
            await self.on_change([key])
        return fresh

    async def _read_transcriptions(self, key: str) -> FreshTranscriptions | None:
        value = await self._get(key)
        if value is None:
            return None
        try:
            entry = _TRANSCRIPTIONS_DECODER.decode(value)
        except msgspec.DecodeError as exc:
            logger.warning("ignoring an unreadable cache entry (%s)", exc)
            return None
        return FreshTranscriptions(entry.transcriptions, entry.expires)

    def _count(self, result: str) -> None:
        if self._backend is not None:
            CACHE_LOOKUPS.labels(result=result).inc()

    async def close(self) -> None:
        if self._backend is not None:
            await self._backend.close()

    async def _load(
        self, key: str, load: Callable[[], Awaitable[Recording]], previous: Recording | None
    ) -> Fresh:
        try:
            recording = await load()
        except RecordingNotFoundError as exc:
            if self._policy.not_found:
                await self._write(key, encode_not_found(exc), self._policy.not_found)
            if previous is not None and self.on_change is not None:
                await self.on_change([key])  # it was there, it is gone (deleted)
            raise
        if asyncio.current_task() in self._void:  # deleted meanwhile: answer, do not keep
            return Fresh(recording, self._clock(), key=key)
        return await self._store(key, recording, previous)

    async def _read(self, key: str) -> Fresh | RecordingNotFoundError | None:
        value = await self._get(key)
        if value is None:
            return None
        try:
            return decode_entry(value)
        except msgspec.DecodeError as exc:
            logger.warning("ignoring an unreadable cache entry (%s)", exc)
            return None

    async def _remove(self, key: str) -> None:
        if self._backend is None:
            return
        backend = self._backend

        async def remove() -> None:
            await backend.delete(key)

        with tracing.span("cache.delete"):
            await self._outage.guard(remove, None)

    async def _get(self, key: str) -> Any:
        """The raw value at ``key``, or None (none, no backend, or the backend failing)."""
        if self._backend is None:
            return None
        backend = self._backend
        with tracing.span("cache.get") as span:
            value = await self._outage.guard(lambda: backend.get(key), None)
            span.set("cache.hit", value is not None)
        return value

    async def _write(self, key: str, value: str, ttl: int) -> bool:
        """Whether the value was stored."""
        if self._backend is None:
            return False
        backend = self._backend

        async def write() -> bool:
            await backend.set(key, value, ttl=ttl)
            return True

        with tracing.span("cache.set") as span:
            stored = await self._outage.guard(write, False)
            span.set("cache.stored", stored)
        return stored


def _report_availability(available: bool) -> None:
    """The cache backend's outage began (``False``) or is over (``True``): the metrics."""
    CACHE_AVAILABLE.set(1 if available else 0)
    if not available:
        CACHE_OUTAGES.inc()


# The codec. msgspec reads the stored shape off the dataclasses' type hints, so a field
# added to models.Recording is stored and read back with no change here: enums as their
# values, datetimes as RFC 3339 (offset and microseconds kept), Decimal amounts as
# strings (exact), tuples as arrays, ``raw`` as the JSON it came as.


class _NotFound(msgspec.Struct, forbid_unknown_fields=True):
    provider: Provider | None
    message: str


class _Entry(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What one key holds: a recording and when its entry expires (unix seconds), or a
    provider's NOT_FOUND answer (a sentinel, since aiocache reads a cached ``None`` as a miss)."""

    recording: Recording | None = None
    expires: float = 0.0
    not_found: _NotFound | None = None


class _TranscriptionsEntry(msgspec.Struct, forbid_unknown_fields=True):
    """What a transcriptions key holds: a recording's transcriptions and when they expire."""

    transcriptions: tuple[Transcription, ...]
    expires: float


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Entry)
_TRANSCRIPTIONS_DECODER = msgspec.json.Decoder(_TranscriptionsEntry)


def shape_of(entry: type[msgspec.Struct]) -> str:
    """A short fingerprint of the stored shape: the entry's JSON Schema (field names, types,
    defaults, enum values), docstrings aside. It is part of every key, so entries written
    before a field was added are never read with that field silently at its default."""
    schema = msgspec.json.schema(entry)
    for definition in schema.get("$defs", {}).values():
        definition.pop("description", None)
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:8]


SHAPE = shape_of(_Entry)
TRANSCRIPTIONS_SHAPE = shape_of(_TranscriptionsEntry)


def encode(recording: Recording, expires: float = 0.0) -> str:
    """A Recording as JSON text, with the instant its entry expires."""
    return _ENCODER.encode(_Entry(recording=recording, expires=expires)).decode()


def encode_not_found(error: RecordingNotFoundError) -> str:
    """A NOT_FOUND answer, kept so that it can be given again without asking."""
    return _ENCODER.encode(_Entry(not_found=_NotFound(error.provider, error.message))).decode()


def decode(text: str) -> Recording | RecordingNotFoundError:
    """The inverse of ``encode`` and ``encode_not_found``; ``msgspec.DecodeError`` (a
    ValueError) for anything else."""
    entry = decode_entry(text)
    return entry.recording if isinstance(entry, Fresh) else entry


def decode_entry(text: str) -> Fresh | RecordingNotFoundError:
    """``decode``, with the instant a recording's entry expires."""
    entry = _DECODER.decode(text)
    if entry.recording is not None:
        return Fresh(entry.recording, entry.expires)
    if entry.not_found is not None:
        return RecordingNotFoundError(entry.not_found.message, provider=entry.not_found.provider)
    raise msgspec.ValidationError("a cache entry holds neither a recording nor NOT_FOUND")
