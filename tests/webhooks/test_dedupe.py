"""Claims of deliveries seen: once per TTL, bounded in memory, shared through a real Redis,
and kept in memory while Redis is away."""

from __future__ import annotations

import logging
import socket

import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis

from app.outages import Outage
from app.settings import CacheSettings
from app.webhooks.dedupe import KEY_PREFIX, MemorySeen, Seen, key

pytestmark = pytest.mark.anyio

dedupe_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]
dedupe_db = factories.redisdb("dedupe_redis")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def outage() -> Outage:
    return Outage(logging.getLogger("tests.dedupe"), "down (%s)", "back", cooldown=60)


def redis_settings(port: int, host: str = "127.0.0.1") -> CacheSettings:
    return CacheSettings(kind="redis", host=host, port=port, timeout=1.0)


def test_keys_are_hashes_of_their_parts() -> None:
    made = key(["acme", "twilio", "recording", "RE1", "completed"])
    assert made.startswith(KEY_PREFIX) and len(made) == len(KEY_PREFIX) + 64
    assert "acme" not in made
    assert key(["a", "bc"]) != key(["ab", "c"])


def test_memory_claims_last_their_ttl() -> None:
    clock = Clock()
    seen = MemorySeen(ttl=60, clock=clock)
    assert seen.claim("a") and not seen.claim("a")
    clock.now += 59
    assert not seen.claim("a")
    clock.now += 1
    assert seen.claim("a")


def test_memory_keeps_at_most_its_bound_oldest_out() -> None:
    seen = MemorySeen(ttl=60, max_entries=3, clock=Clock())
    for name in "abcd":
        assert seen.claim(name)
    assert len(seen) == 3
    assert seen.claim("a")  # forgotten first
    assert not seen.claim("d")


async def test_two_replicas_claim_a_delivery_once_through_redis(
    dedupe_redis: RedisExecutor, dedupe_db: Redis
) -> None:
    settings = redis_settings(dedupe_redis.port)
    one = Seen.from_settings(settings, 600, outage())
    two = Seen.from_settings(settings, 600, outage())
    try:
        assert await one.claim("acme", "twilio", "RE1", "completed")
        assert not await two.claim("acme", "twilio", "RE1", "completed")
        assert await two.claim("acme", "twilio", "RE1", "absent")
        stored = [k for k in dedupe_db.keys() if isinstance(k, bytes)]
        assert len(stored) == 2 and all(k.startswith(KEY_PREFIX.encode()) for k in stored)
        assert all(590 < dedupe_db.ttl(k) <= 600 for k in stored)
        await one.release("acme", "twilio", "RE1", "completed")
        assert await two.claim("acme", "twilio", "RE1", "completed")
    finally:
        await one.aclose()
        await two.aclose()


async def test_with_redis_away_claims_are_kept_in_memory(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    seen = Seen.from_settings(redis_settings(port), 600, outage())
    try:
        assert await seen.claim("acme", "bird", "rec", "available")
        assert not await seen.claim("acme", "bird", "rec", "available")
    finally:
        await seen.aclose()
    assert "down (ConnectionError)" in caplog.text
