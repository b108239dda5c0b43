"""APQ across two gateway processes behind one Redis: a query registered through one replica
runs by its hash alone on the other.

The processes are handled as in ``tests/access/test_replicas.py`` (whose helpers this
reuses): each replica is ``python -m app serve`` in its own OS process, configured by its
environment only, with one real redis-server (behind a password) as ``GATEWAY_CACHE_URL``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from pytest_redis.executor import RedisExecutor
from redis import Redis

from app.access.keys import new_key
from app.persisted.store import TTL
from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from tests.access.support import TenantSpec, bearer, write_config
from tests.access.test_replicas import (
    PASSWORD,
    Replica,
    replica_env,
    two_replicas,
)
from tests.persisted.support import ApolloPersistedLink
from tests.servers import serve
from tests.support import RECORDING_QUERY, SIGNING_KEY, secrets_of, upstream_count

pytestmark = pytest.mark.anyio

apq_redis = factories.redis_proc(port=None, password=PASSWORD)  # type: ignore[arg-type]
apq_db = factories.redisdb("apq_redis")

KEY = new_key()


@dataclass(frozen=True)
class Pair:
    sandbox: Sandbox
    one: Replica
    two: Replica


@pytest.fixture(scope="module")
def pair(apq_redis: RedisExecutor, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    config = SandboxConfig()
    sandbox_app = create_sandbox_app(config)
    sandbox: Sandbox = sandbox_app.state.sandbox
    directory = tmp_path_factory.mktemp("apq-replicas")
    with serve(sandbox_app) as sandbox_url:
        tenants = {"acme": TenantSpec(KEY)}
        config_env = write_config(directory / "gateway.toml", config, tenants, base_url=sandbox_url)
        env = replica_env(config_env, apq_redis)
        secrets = (
            KEY,
            *(value for name, value in config_env.items() if "SECRET_" in name),
            *secrets_of(config),
            SIGNING_KEY,
            PASSWORD,
        )
        with two_replicas(env, directory, secrets) as (one, two):
            yield Pair(sandbox, one, two)


def client(replica: Replica) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=replica.url, headers=bearer(KEY), timeout=30)


async def test_a_query_registered_on_one_replica_runs_by_hash_on_the_other(
    pair: Pair, apq_db: Redis
) -> None:
    rid = pair.sandbox.sample_ids()["twilio"]
    variables: dict[str, Any] = {"provider": "TWILIO", "id": rid}
    async with client(pair.one) as one, client(pair.two) as two:
        registering = ApolloPersistedLink(one)
        first = await registering.run(RECORDING_QUERY, variables, "One")
        assert "errors" not in first and first["data"]["recording"]["id"] == rid, first
        assert [(e.method, e.with_query) for e in registering.exchanges] == [
            ("POST", False),
            ("POST", True),
        ]
        for use_get in (False, True):
            hashed = ApolloPersistedLink(two, use_get_for_hashed_queries=use_get)
            assert await hashed.run(RECORDING_QUERY, variables, "One") == first
            assert [(e.method, e.with_query) for e in hashed.exchanges] == [
                ("GET" if use_get else "POST", False)
            ]
    assert upstream_count(pair.sandbox, rid) == 1  # the recording cache is shared too
    [stored] = apq_db.keys("rg:apq:*")
    assert 0 < apq_db.ttl(stored) <= TTL
