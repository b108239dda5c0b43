"""Per-tenant rate limits, counted in cost units, with one budget for every replica.

The counting is the ``limits`` library's; this module adds the gateway's rules on top.

- **Strategy: the sliding window counter.** ``limits`` offers three. The fixed window lets
  a tenant spend twice its budget across a window boundary. The moving window is exact,
  but its Redis storage keeps one list entry per unit spent: a request of cost 500 pushes
  500 timestamps, and a "600/minute" tenant holds up to 600 of them, so its Redis time and
  memory per hit grow with the cost. The sliding window counter keeps two integers per
  bucket (this window's count and the previous one's) and spends one ``INCRBY`` per hit
  whatever the cost; its price is an approximation: the previous window's count is
  weighted as if its hits were spread evenly over it.
- **Storage**: Redis when the cache is Redis (``GATEWAY_CACHE_URL``), so N replicas share
  one budget; otherwise memory, one budget per process (``none://`` turns off the cache,
  not the limits). The Redis client is redis-py's (already there for the cache), on a pool
  of our own: every call bounded by ``timeout``, no retries, the password never in a URL.
- **Keys** are scoped to the tenant and hold no name in clear:
  ``rg:rl:{LIMITER/<digest>/<amount>/<multiples>/<granularity>}`` (and ``…/-1`` for the
  previous window), the digest a short SHA-256 of the tenant, as the cache's keys do. The
  rate is part of the key: a tenant whose rate changes starts on a fresh budget.
- **Refusals**: a request costing more than the whole limit can never pass and is refused
  without counting; a refused request spends nothing. ``retry_after`` is worked out from
  the window's counts (``seconds_until_fits``), so it holds for a cost of several units;
  limits' own ``reset_time`` is for one unit, and in Redis often reads "now" right after
  a hit (this window's TTL is then exactly two windows, which it takes modulo one).
- **Outages**: a failing or frozen storage (Redis down, stopped, slow) fails OPEN: the
  request passes, since refusing every tenant because Redis is away would turn a cache
  outage into a gateway outage. Each hit waits at most ``timeout`` for the storage; the
  failure is logged once when it starts and once when the storage is back.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import limits
import redis.asyncio
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage, SlidingWindowCounterSupport, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.outages import COOLDOWN, Outage
from app.settings import CacheSettings

logger = logging.getLogger(__name__)

#: Namespace of the rate-limit keys in Redis, beside the cache's ``rg:v<N>:``.
KEY_PREFIX = "rg:rl"
#: Seconds a hit may wait for the storage before it passes unlimited.
STORAGE_TIMEOUT = 0.5
#: The largest amount a rate may allow (Redis counts in 64-bit, Lua in doubles).
MAX_AMOUNT = 2**31

# "10/0 seconds": limits reads a multiple of 0 as 1; we refuse it instead.
_ZERO_MULTIPLE = re.compile(r"(?:/|\bper)\s*0+\s*[a-z]", re.IGNORECASE)


def parse_rate(text: str) -> RateLimitItem:
    """A rate such as ``600/minute``, ``10 per second`` or ``1000/2 hours``; ValueError else."""
    cleaned = text.strip()
    try:
        rates = limits.parse_many(cleaned)
    except ValueError:
        rates = []
    if len(rates) != 1 or _ZERO_MULTIPLE.search(cleaned):
        raise ValueError(
            "a rate limit is one amount per period, like '600/minute', '10 per second' or "
            f"'1000/2 hours' (periods: second, minute, hour, day, month, year); got {text!r}"
        )
    rate = rates[0]
    if not 1 <= rate.amount <= MAX_AMOUNT:
        raise ValueError(f"a rate limit allows from 1 to {MAX_AMOUNT} units; got {text!r}")
    return rate


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass; if not, the whole seconds until its cost fits again."""

    allowed: bool
    retry_after: int = 0


ALLOWED = Decision(allowed=True)


def bucket(tenant: str) -> str:
    """The tenant's identifier in the limiter's keys: stable, short, not the name."""
    return hashlib.sha256(f"rate-limit|{tenant}".encode()).hexdigest()[:24]


def seconds_until_fits(window: tuple[int, float, int, float], expiry: int, room: int) -> float:
    """Seconds from now until the weighted count drops below ``room``, the count at which
    a request fits (``limit - cost + 1``), if nothing else is spent meanwhile.

    ``window`` is what ``limits``' ``get_sliding_window`` returns: the previous window's
    count and seconds to live, this window's count and seconds to live (this window lives
    ``expiry`` seconds past its end, as the next one's "previous"). The weighted count is
    ``previous * previous_ttl / expiry + current`` until this window ends, then
    ``current * ttl / expiry`` as it becomes the previous one, then 0.
    """
    previous, previous_ttl, current, current_ttl = window
    rest = max(0.0, current_ttl - expiry)  # until this window ends
    if current < room:
        # Fits once enough of the previous window has decayed, at the latest when it ends.
        if previous == 0:
            return 0.0
        return max(0.0, min(rest, previous_ttl - (room - current) * expiry / previous))
    # Fits only once this window, become the previous one, has decayed enough.
    return rest + expiry - room * expiry / current


class RateLimiter:
    """Per-tenant budgets of cost units over a ``limits`` storage (memory or Redis)."""

    def __init__(
        self,
        storage: Storage,
        *,
        timeout: float = STORAGE_TIMEOUT,
        cooldown: float = COOLDOWN,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if not isinstance(storage, SlidingWindowCounterSupport):
            raise TypeError(f"{type(storage).__name__} has no sliding window counter")
        self._storage = storage
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._timeout = timeout
        self._on_close = on_close
        self._outage = Outage(
            logger,
            "rate-limit storage unavailable (%s); requests pass unlimited until it is back",
            "rate-limit storage is back; rate limits apply again",
            cooldown=cooldown,
        )

    @classmethod
    def from_settings(cls, cache: CacheSettings, *, timeout: float | None = None) -> RateLimiter:
        """Redis storage when the cache is Redis (one budget for all replicas), else memory;
        each call bounded by the cache's timeout (``GATEWAY_CACHE_TIMEOUT``) unless told."""
        if timeout is None:
            timeout = cache.timeout
        if cache.kind != "redis":
            return cls(MemoryStorage(), timeout=timeout, cooldown=cache.cooldown)
        pool = redis.asyncio.ConnectionPool(
            host=cache.host,
            port=cache.port,
            db=cache.db,
            password=str(cache.password) if cache.password else None,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # a failed call passes the request; never wait longer
        )
        # limits documents ``connection_pool``: the client is then built on it, the URL unused.
        options: dict[str, Any] = {"connection_pool": pool}
        storage = RedisStorage(
            "async+redis://", implementation="redispy", key_prefix=KEY_PREFIX, **options
        )
        return cls(storage, timeout=timeout, cooldown=cache.cooldown, on_close=pool.aclose)

    async def hit(self, tenant: str, rate: RateLimitItem, cost: int) -> Decision:
        """Spend ``cost`` units of ``tenant``'s budget, or refuse without spending any."""
        if cost < 0:
            raise ValueError(f"a cost is 0 or more units, got {cost}")
        if cost == 0:
            return ALLOWED
        expiry = rate.get_expiry()
        if cost > rate.amount:
            return Decision(allowed=False, retry_after=expiry)  # never fits: not counted
        if not self._outage.available():
            return ALLOWED  # the storage failed moments ago: pass until its cool-down ends
        identifier = bucket(tenant)
        try:
            async with asyncio.timeout(self._timeout):
                if await self._strategy.hit(rate, identifier, cost=cost):
                    decision = ALLOWED
                else:
                    window = await self._storage.get_sliding_window(
                        rate.key_for(identifier), expiry
                    )
                    wait = seconds_until_fits(window, expiry, rate.amount - cost + 1)
                    decision = Decision(allowed=False, retry_after=math.floor(wait) + 1)
        except Exception as exc:  # any storage failure lets the request through
            self._outage.failed(exc)
            return ALLOWED
        self._outage.succeeded()
        return decision

    async def aclose(self) -> None:
        if self._on_close is not None:
            await self._on_close()
