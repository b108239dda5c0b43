"""The Redis backend, against a real redis-server (pytest-redis starts it)."""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from redis import Redis
from starlette.applications import Starlette

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import (
    fetch_recording,
    gateway_client,
    sandbox_env,
    upstream_count,
)

pytestmark = pytest.mark.anyio

# A server of its own for the outage test, which stops and restarts it.
outage_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]  # None: any free port


def redis_settings(config: SandboxConfig, proc: Any, **extra: str) -> Settings:
    url = f"redis://{proc.host}:{proc.port}/0"
    return Settings.from_env({**sandbox_env(config), "GATEWAY_CACHE_URL": url, **extra})


def raw_keys(db: Redis, pattern: str) -> list[bytes]:
    """The keys as stored (pytest-redis's client does not decode responses)."""
    keys = [key for key in db.keys(pattern) if isinstance(key, bytes)]
    assert len(keys) == len(db.keys(pattern)), "expected raw bytes keys"
    return keys


def raw_value(db: Redis, key: bytes) -> bytes:
    value = db.get(key)
    assert value is None or isinstance(value, bytes)
    return value or b""


def record_with_status(sandbox: Sandbox, provider: str, status: str) -> str:
    return next(r.id for r in sandbox.dataset.listing(provider) if r.status == status)


@pytest.mark.parametrize("stale", [0, 86400])
async def test_ttl_policy_as_stored(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    stale: int,
) -> None:
    """Recordings are kept their TTL plus the stale window (GATEWAY_CACHE_STALE_TTL);
    NOT_FOUND only its own TTL: it is never served stale."""
    done = sandbox.sample_ids()["twilio"]
    active = record_with_status(sandbox, "twilio", "in-progress")
    missing = "RE" + "0" * 32
    settings = redis_settings(sandbox_config, redis_proc, GATEWAY_CACHE_STALE_TTL=str(stale))
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for rid in (done, active, missing):
            await fetch_recording(client, Provider.TWILIO, rid)
    ttls = {
        key.decode().rsplit(":", 1)[1]: redisdb.ttl(key) for key in raw_keys(redisdb, "rg:v3:*")
    }
    assert set(ttls) == {done, active, missing}
    assert 3590 + stale < ttls[done] <= 3600 + stale
    assert stale < ttls[active] <= 5 + stale
    assert 20 < ttls[missing] <= 30


async def test_nothing_secret_or_expiring_is_stored(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    # The recording cache's entries (tests/responses checks the answers kept whole).
    settings = redis_settings(sandbox_config, redis_proc, GATEWAY_RESPONSE_CACHE="off")
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for provider in Provider:
            await fetch_recording(client, provider, sandbox.sample_ids()[provider.value])
    keys = b" ".join(raw_keys(redisdb, "*"))
    stored = b" ".join(raw_value(redisdb, key) for key in raw_keys(redisdb, "*"))
    assert len(redisdb.keys("*")) == 3
    for secret in (
        sandbox_config.twilio_auth_token,
        sandbox_config.signalwire_api_token,
        sandbox_config.bird_access_key,
    ):
        assert secret.encode() not in stored + keys
    for account in (sandbox_config.twilio_account_sid, sandbox_config.bird_workspace_id):
        assert account.encode() not in keys  # hashed into the key, never in clear
    assert b"X-Amz" not in stored


async def test_two_replicas_share_one_redis(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    settings = redis_settings(sandbox_config, redis_proc)
    transport = httpx.ASGITransport(app=sandbox_app)
    async with (
        gateway_client(settings, transport) as replica_a,
        gateway_client(settings, transport) as replica_b,
    ):
        for provider in Provider:
            rid = sandbox.sample_ids()[provider.value]
            from_a = await fetch_recording(replica_a, provider, rid)
            from_b = await fetch_recording(replica_b, provider, rid)
            assert from_a == from_b
            assert "errors" not in from_b
            assert upstream_count(sandbox, rid) == 1


async def test_another_account_never_reads_the_entry(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    rid = sandbox.sample_ids()["bird"]
    transport = httpx.ASGITransport(app=sandbox_app)
    first = redis_settings(sandbox_config, redis_proc)
    # Same credentials, another endpoint: another tenant as far as the cache is concerned.
    other = redis_settings(sandbox_config, redis_proc, BIRD_BASE_URL="http://bird-eu.test")
    async with gateway_client(first, transport) as a, gateway_client(other, transport) as b:
        await fetch_recording(a, Provider.BIRD, rid)
        await fetch_recording(b, Provider.BIRD, rid)
    assert upstream_count(sandbox, rid) == 2


async def test_redis_outage_degrades_to_providers_and_recovers(
    outage_redis: Any,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.cache")
    rid = sandbox.sample_ids()["twilio"]
    others = [r.id for r in sandbox.dataset.listing("twilio") if r.status == "completed"][1:4]
    settings = redis_settings(sandbox_config, outage_redis, GATEWAY_CACHE_COOLDOWN="0")
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        await fetch_recording(client, Provider.TWILIO, rid)
        await fetch_recording(client, Provider.TWILIO, rid)
        assert upstream_count(sandbox, rid) == 1

        outage_redis.stop()
        try:
            for _ in range(3):
                body = await fetch_recording(client, Provider.TWILIO, rid)
                assert "errors" not in body, body
            assert upstream_count(sandbox, rid) == 4
            for other in others:
                assert "errors" not in await fetch_recording(client, Provider.TWILIO, other)
        finally:
            outage_redis.start()
        warnings = [r.getMessage() for r in caplog.records if r.name == "app.cache"]
        assert len([w for w in warnings if "unavailable" in w]) == 1, warnings

        fresh = others[0]
        before = upstream_count(sandbox, fresh)
        for _ in range(3):
            assert "errors" not in await fetch_recording(client, Provider.TWILIO, fresh)
        assert upstream_count(sandbox, fresh) == before + 1
    assert any("back" in r.getMessage() for r in caplog.records if r.name == "app.cache")


frozen_cache_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]


async def test_a_frozen_redis_costs_one_timeout_per_cool_down(
    frozen_cache_redis: Any,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis stopped with SIGSTOP accepts connections and never answers: the first query
    waits out one GATEWAY_CACHE_TIMEOUT, and the cache is then bypassed for the cool-down,
    so the next queries cost no wait at all (the providers answer them). The response cache,
    on the same Redis, shares that outage: one timeout, not one per cache. Redis calls may take
    half a second here, so that a loaded machine's slow query is not taken for a wait."""
    caplog.set_level(logging.WARNING, logger="app.cache")
    with Redis(host=frozen_cache_redis.host, port=frozen_cache_redis.port) as client:
        info = client.info("server")
    assert isinstance(info, dict)
    pid = int(info["process_id"])
    settings = redis_settings(sandbox_config, frozen_cache_redis, GATEWAY_CACHE_TIMEOUT="0.5")
    rid = sandbox.sample_ids()["twilio"]
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        assert "errors" not in await fetch_recording(client, Provider.TWILIO, rid)  # warm-up
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.perf_counter()
            assert "errors" not in await fetch_recording(client, Provider.TWILIO, rid)
            first = time.perf_counter() - started
            later = []
            for _ in range(5):
                started = time.perf_counter()
                assert "errors" not in await fetch_recording(client, Provider.TWILIO, rid)
                later.append(time.perf_counter() - started)
        finally:
            os.kill(pid, signal.SIGCONT)
    assert settings.cache.timeout * 0.9 <= first < settings.cache.timeout * 1.9, first
    assert max(later) < settings.cache.timeout / 2, later
    warnings = [r.getMessage() for r in caplog.records if r.name == "app.cache"]
    assert len([w for w in warnings if "unavailable" in w]) == 1, warnings
