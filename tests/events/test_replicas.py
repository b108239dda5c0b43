"""Subscriptions across two gateway processes sharing one real redis-server.

Each replica is ``python -m app serve`` in its own OS process, configured by its environment
only (as in ``tests/access/test_replicas.py``, whose helpers this reuses), with a
password-protected redis-server as ``GATEWAY_CACHE_URL``: each then runs a ``RedisBus``. The
event is published by a ``RedisBus`` of this test process, one more member of the
deployment as far as Redis is concerned (the webhook receivers, which publish inside a
replica, are not part of this change): subscribers on both replicas must get it, and only
those of its tenant.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis
from starlette.datastructures import Secret

from app.access.keys import new_key
from app.events.redis import RedisBus
from app.sandbox import SandboxConfig, create_sandbox_app
from app.settings import CacheSettings
from tests.access.support import TenantSpec, write_config
from tests.access.test_replicas import (
    PASSWORD,
    Replica,
    replica_env,
    two_replicas,
)
from tests.events.support import EVENTS, WAIT, init, receive, recording_event, socket, subscribe
from tests.events.support import until_active as until_open
from tests.servers import serve
from tests.support import SIGNING_KEY, secrets_of

pytestmark = pytest.mark.anyio

events_redis = factories.redis_proc(port=None, password=PASSWORD)  # type: ignore[arg-type]
events_db = factories.redisdb("events_redis")

ACME, GLOBEX = new_key(), new_key()
TENANTS = {"acme": TenantSpec(ACME), "globex": TenantSpec(GLOBEX)}


@dataclass(frozen=True)
class Pair:
    one: Replica
    two: Replica
    redis: RedisExecutor


@pytest.fixture(scope="module")
def pair(events_redis: RedisExecutor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    config = SandboxConfig()
    directory = tmp_path_factory.mktemp("event-replicas")
    with serve(create_sandbox_app(config)) as sandbox_url:
        config_env = write_config(directory / "gateway.toml", config, TENANTS, base_url=sandbox_url)
        env = replica_env(config_env, events_redis)
        secrets = (
            ACME,
            GLOBEX,
            *(value for name, value in config_env.items() if "SECRET_" in name),
            *secrets_of(config),
            SIGNING_KEY,
            PASSWORD,
        )
        with two_replicas(env, directory, secrets) as (one, two):
            yield Pair(one, two, events_redis)


@contextlib.asynccontextmanager
async def publisher(redis: RedisExecutor) -> AsyncIterator[RedisBus]:
    cache = CacheSettings(
        kind="redis", host=redis.host, port=redis.port, password=Secret(PASSWORD), timeout=5.0
    )
    bus = RedisBus.from_settings(cache)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.aclose()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_an_event_reaches_its_tenants_subscribers_on_every_replica(
    pair: Pair, events_db: Redis
) -> None:
    async with (
        httpx.AsyncClient(base_url=pair.one.url, timeout=10) as one,
        httpx.AsyncClient(base_url=pair.two.url, timeout=10) as two,
        socket(pair.one.url) as acme_one,
        socket(pair.two.url) as acme_two,
        socket(pair.two.url) as globex_two,
        publisher(pair.redis) as bus,
    ):
        for ws, key in ((acme_one, ACME), (acme_two, ACME), (globex_two, GLOBEX)):
            assert await init(ws, bearer(key)) == {"type": "connection_ack"}
            await subscribe(ws, "1", EVENTS)
        await until_open(one, "acme", 1)
        await until_open(two, "acme", 1)
        await until_open(two, "globex", 1)
        # Both replicas and this publisher listen on the channel (each round trip the wait).
        deadline = time.monotonic() + WAIT
        while events_db.pubsub_numsub(bus.channel) != [(bus.channel.encode(), 3)]:
            assert time.monotonic() < deadline, "the replicas never subscribed to the channel"
        await bus.publish(recording_event("acme", "RE-acme", call_id="CA1", duration=30))
        await bus.publish(recording_event("globex", "RE-globex"))
        for ws in (acme_one, acme_two):
            message = await receive(ws)
            event = message["payload"]["data"]["recordingEvents"]
            assert event["recording"]["id"] == "RE-acme", message
            assert event["recording"]["durationSeconds"] == 30
        # globex's first event is its own: acme's, published before, never reached it.
        message = await receive(globex_two)
        assert message["payload"]["data"]["recordingEvents"]["recording"]["id"] == "RE-globex"
