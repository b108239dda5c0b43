"""Live updates across two replicas sharing one real redis-server, every piece real.

Two ``python -m app serve`` processes (started as ``tests/access/test_replicas.py`` starts
them) serve two config-file tenants, acme (each provider's sandbox account 0) and globex
(account 1), each with a receiver for every provider. Both stand behind one public URL
(``GATEWAY_PUBLIC_URL``, what the providers sign), reached through a ``Balancer`` the
sandbox's courier sends its callbacks through. The sandbox (served from this process, so its
request log can be read) moves recordings on with its lifecycle and calls back each
account's tenant.

What must hold: a callback worked on by replica one reaches the subscribers on replica two
(Redis pub/sub); the same delivery reaching both replicas (a provider's retry landing
elsewhere) is worked on once and makes one event; each tenant's subscribers see their own
recordings' events and nobody else's; and the refreshed recording is in the shared cache,
so either replica answers the next query without asking the provider.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis

from app.access.keys import new_key
from app.events.redis import CHANNEL
from app.sandbox import Sandbox, SandboxConfig, SentCallback, create_sandbox_app
from tests.access.support import TenantSpec, bearer, write_config
from tests.access.test_replicas import (
    PASSWORD,
    Replica,
    replica_env,
    two_replicas,
)
from tests.events.live import (
    LIVE_EVENTS,
    MAX_STEPS,
    Balancer,
    Seen,
    expect_events,
    point_at,
    step,
)
from tests.events.support import WAIT, init, socket, subscribe, until_active
from tests.servers import serve
from tests.support import RECORDING_QUERY, SIGNING_KEY, secrets_of, upstream_count

pytestmark = pytest.mark.anyio

live_redis = factories.redis_proc(port=None, password=PASSWORD)  # type: ignore[arg-type]
live_db = factories.redisdb("live_redis")

PUBLIC = "https://gateway.example.com"
ACME, GLOBEX = new_key(), new_key()
SECOND = {"twilio": 1, "signalwire": 1, "bird": 1}
TENANTS = {
    "acme": TenantSpec(ACME, webhooks=True),
    "globex": TenantSpec(GLOBEX, accounts=SECOND, webhooks=True),
}


@dataclass(frozen=True)
class Pair:
    sandbox: Sandbox
    one: Replica
    two: Replica


@pytest.fixture
def pair(live_redis: RedisExecutor, tmp_path: Path) -> Iterator[Pair]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    with serve(sandbox_app) as sandbox_url:
        config_env = write_config(tmp_path / "gateway.toml", config, TENANTS, base_url=sandbox_url)
        env = replica_env(config_env | {"GATEWAY_PUBLIC_URL": PUBLIC}, live_redis)
        secrets = (
            ACME,
            GLOBEX,
            *(value for name, value in config_env.items() if "SECRET_" in name),
            *secrets_of(config),
            *(config.accounts(p)[i].signing_key for p in SECOND for i in (0, 1)),
            SIGNING_KEY,
            PASSWORD,
        )
        with two_replicas(env, tmp_path, secrets) as (one, two):
            yield Pair(sandbox_app.state.sandbox, one, two)


async def query(client: httpx.AsyncClient, provider: str, rid: str) -> dict[str, Any]:
    variables = {"provider": provider.upper(), "id": rid}
    answer = await client.post("/graphql", json={"query": RECORDING_QUERY, "variables": variables})
    recording: dict[str, Any] = answer.json()["data"]["recording"]
    return recording


def of_tenant(sent: list[SentCallback], tenant: str) -> list[SentCallback]:
    return [each for each in sent if each.url.endswith(f"/{tenant}")]


async def test_callbacks_reach_every_replicas_subscribers_once_and_only_their_tenants(
    pair: Pair, live_db: Redis
) -> None:
    sandbox = pair.sandbox
    balancer = Balancer({"one": pair.one.url, "two": pair.two.url})
    sandbox.courier.transport = balancer
    clock = point_at(sandbox, PUBLIC, ("acme", "globex"))
    acme, globex = Seen(), Seen()
    async with (
        httpx.AsyncClient(base_url=pair.two.url, headers=bearer(ACME), timeout=30) as two,
        socket(pair.two.url) as acme_ws,
        socket(pair.two.url) as globex_ws,
    ):
        for ws, key in ((acme_ws, ACME), (globex_ws, GLOBEX)):
            assert await init(ws, {"Authorization": f"Bearer {key}"}) == {"type": "connection_ack"}
            await subscribe(ws, "1", LIVE_EVENTS)
        await until_active(two, "acme", 1)
        await until_active(two, "globex", 1)
        channel = CHANNEL.format(db=0)
        deadline = time.monotonic() + WAIT  # each round trip the wait
        while live_db.pubsub_numsub(channel) != [(channel.encode(), 2)]:
            assert time.monotonic() < deadline, "the replicas never subscribed to the channel"

        async def one_step() -> None:
            sent = await step(sandbox, clock)
            await expect_events(acme_ws, sandbox, of_tenant(sent, "acme"), acme, account=0)
            await expect_events(globex_ws, sandbox, of_tenant(sent, "globex"), globex, account=1)
            # Replica two answers each new state at once, though replica one refreshed it:
            # an answer it cached of the state before was purged (the cache is shared).
            for each in of_tenant(sent, "acme"):
                state = await query(two, each.provider, each.recording_id)
                assert state["providerStatus"] == each.status, (each, state)

        # Every callback worked on by replica one; the subscribers are on replica two.
        for _ in range(MAX_STEPS):
            await one_step()
            if len(acme.completed) == 3 and len(globex.completed) == 3:
                break
        assert (
            sorted(acme.completed) == sorted(globex.completed) == ["bird", "signalwire", "twilio"]
        )
        assert {outcomes for outcomes in balancer.outcomes} == {("accepted",)}

        # Each delivery reaching both replicas, one way round then the other: the second
        # is a duplicate, and the subscribers get one event (a second would fail the next
        # step's check, which reads exactly that step's events).
        for route in (("one", "two"), ("two", "one")):
            balancer.route = route
            before = len(balancer.outcomes)
            await one_step()
            assert balancer.outcomes[before:], "the step called nothing back"
            assert set(balancer.outcomes[before:]) == {("accepted", "duplicate")}
        balancer.route = ("one",)
        await one_step()
    await balancer.shutdown()

    # The refreshed recordings are in the shared cache: neither replica asks the provider.
    for replica, tenant, seen, key in (
        (pair.two, "acme", acme, ACME),
        (pair.one, "globex", globex, GLOBEX),
    ):
        with replica.client(key) as client:
            for provider, (rid, duration) in seen.completed.items():
                asked = upstream_count(sandbox, rid)
                variables = {"provider": provider.upper(), "id": rid}
                body = client.post(
                    "/graphql", json={"query": RECORDING_QUERY, "variables": variables}
                ).json()
                recording = body["data"]["recording"]
                assert upstream_count(sandbox, rid) == asked, f"{tenant} {provider}: upstream"
                assert (recording["status"], recording["durationSeconds"]) == (
                    "COMPLETED",
                    duration,
                )
