"""``RedisBus`` on a real redis-server: events cross processes' buses (two buses here, each
as one replica holds it), stay within their tenant, and survive an outage of Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from pytest_redis import factories
from redis import Redis

from app.events import Delivery, EventBus, Subscription, build_bus, codec
from app.events.redis import RedisBus
from app.settings import CacheSettings, Settings
from tests.events.support import recording_event

pytestmark = pytest.mark.anyio

# A server of its own for the outage test, which stops and restarts it.
bus_outage_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]  # any free port


def cache_settings(server: Any, **changes: Any) -> CacheSettings:
    """Settings for ``server``; Redis calls may take 5 s, so that a loaded machine's slow
    call is not taken for an outage."""
    return CacheSettings(
        kind="redis", host=server.host, port=server.port, **{"timeout": 5.0, **changes}
    )


@contextlib.asynccontextmanager
async def bus_on(cache: CacheSettings, queue: int = 100) -> AsyncIterator[RedisBus]:
    bus = RedisBus.from_settings(cache, queue)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.aclose()


async def next_of(subscription: Subscription) -> Delivery:
    async with asyncio.timeout(10):
        return await anext(aiter(subscription))


async def nothing_queued(bus: EventBus, subscription: Subscription) -> bool:
    """Nothing waits in ``subscription``: closing it ends its stream at once."""
    bus.unsubscribe(subscription)
    return not [delivery async for delivery in subscription]


def test_the_redis_cache_picks_the_redis_bus(redis_proc: Any) -> None:
    redis_cache = Settings(cache=cache_settings(redis_proc))
    assert isinstance(build_bus(redis_cache), RedisBus)
    assert not isinstance(build_bus(Settings()), RedisBus)


async def test_an_event_published_on_one_bus_reaches_the_others_subscribers(
    redis_proc: Any,
) -> None:
    cache = cache_settings(redis_proc)
    async with bus_on(cache) as one, bus_on(cache) as two:
        assert one.listening.is_set() and two.listening.is_set()
        here, there = one.subscribe("acme"), two.subscribe("acme")
        other_tenant = two.subscribe("globex")
        await one.publish(recording_event("acme", "RE1"))
        await one.publish(recording_event("acme", "RE2"))
        assert [(await next_of(there)).event.recording.id for _ in range(2)] == ["RE1", "RE2"]
        # Its own subscribers got each once (at publish), not again when Redis echoed it.
        assert [(await next_of(here)).event.recording.id for _ in range(2)] == ["RE1", "RE2"]
        await one.publish(recording_event("globex", "RE3"))  # after RE1, RE2 on the channel
        assert (await next_of(other_tenant)).event.recording.id == "RE3"
        assert await nothing_queued(one, here)
        assert await nothing_queued(two, there)


async def test_the_event_crosses_whole(redis_proc: Any) -> None:
    sent = recording_event("acme", "RE1", call_id="CA1", duration=61)
    async with bus_on(cache_settings(redis_proc)) as one, bus_on(cache_settings(redis_proc)) as two:
        there = two.subscribe("acme")
        await one.publish(sent)
        got = (await next_of(there)).event
    assert got == sent


async def test_a_message_that_is_not_an_event_is_skipped(
    redis_proc: Any, redisdb: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.events")
    async with bus_on(cache_settings(redis_proc)) as bus:
        subscription = bus.subscribe("acme")
        redisdb.publish(bus.channel, b"\x80not json")
        redisdb.publish(bus.channel, codec.encode("elsewhere", recording_event("acme", "RE1")))
        assert (await next_of(subscription)).event.recording.id == "RE1"
    assert any("not an event" in r.getMessage() for r in caplog.records)


async def test_the_channel_is_named_after_the_database(redis_proc: Any) -> None:
    """Pub/sub ignores the database number: deployments in two databases of one server
    must not hear each other."""
    async with (
        bus_on(cache_settings(redis_proc, db=1)) as first,
        bus_on(cache_settings(redis_proc, db=2)) as second,
    ):
        assert first.channel != second.channel
        theirs = second.subscribe("acme")
        await first.publish(recording_event("acme", "RE1"))
        await second.publish(recording_event("acme", "RE2"))
        assert (await next_of(theirs)).event.recording.id == "RE2"


async def test_an_outage_keeps_events_local_logs_once_and_recovers(
    bus_outage_redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.events")
    cache = cache_settings(bus_outage_redis, cooldown=0.05)
    watcher = redis.asyncio.Redis(host=bus_outage_redis.host, port=bus_outage_redis.port)
    async with bus_on(cache) as one, bus_on(cache) as two:
        here, there = one.subscribe("acme"), two.subscribe("acme")
        bus_outage_redis.stop()
        try:
            for n in range(3):  # no exception: each reaches this replica's subscriber
                await one.publish(recording_event("acme", f"down-{n}"))
            got = [(await next_of(here)).event.recording.id for _ in range(3)]
            assert got == ["down-0", "down-1", "down-2"]
        finally:
            bus_outage_redis.start()
        # Both listeners come back by themselves: each is subscribed again (each round trip
        # to Redis is the wait), and has marked its bus healthy (so publishing uses Redis).
        async with asyncio.timeout(10):
            while await watcher.pubsub_numsub(one.channel) != [(one.channel.encode(), 2)]:
                pass
            await one.listening.wait()
            await two.listening.wait()
        await one.publish(recording_event("acme", "after"))
        assert (await next_of(there)).event.recording.id == "after"
        assert (await next_of(here)).event.recording.id == "after"
    await watcher.aclose()
    messages = [r.getMessage() for r in caplog.records if r.name == "app.events"]
    down = [m for m in messages if "unavailable" in m]
    assert len(down) == 2, messages  # once per bus, however many calls failed
    assert all(r.exc_info is None for r in caplog.records), "no traceback"
    assert len([m for m in messages if "Redis is back" in m]) == 2, messages
