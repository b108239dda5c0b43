"""The cache: keys, TTL policy, LRU bound, single-flight, and what is never cached."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from starlette.applications import Starlette

from app.cache import SHAPE, BoundedMemoryCache, RecordingCache, decode, encode
from app.errors import ProviderNotConfiguredError
from app.models import CallDirection, MediaFormat, Money, Provider, Recording, RecordingStatus
from app.recordings import RecordingService
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import (
    fetch_recording,
    gateway_client,
    sandbox_env,
    upstream_count,
)

pytestmark = pytest.mark.anyio

TW = Provider.TWILIO


def env_with(config: SandboxConfig, **extra: str) -> Settings:
    return Settings.from_env({**sandbox_env(config), **extra})


async def test_lru_bound_evicts_least_recently_used() -> None:
    cache = BoundedMemoryCache(3)
    for key in ("a", "b", "c"):
        await cache.set(key, key)
    assert await cache.get("a") == "a"  # "a" is now the most recently used
    await cache.set("d", "d")
    assert await cache.get("b") is None
    assert [await cache.get(k) for k in ("a", "c", "d")] == ["a", "c", "d"]


def test_keys_are_tenant_scoped_and_versioned() -> None:
    rid = "RE" + "a" * 32
    scope_a = RecordingCache.scoped(TW, "https://api.twilio.com/2010-04-01|AC" + "1" * 32)
    scope_b = RecordingCache.scoped(TW, "https://api.twilio.com/2010-04-01|AC" + "2" * 32)
    scope_c = RecordingCache.scoped(Provider.SIGNALWIRE, "https://api.twilio.com/2010-04-01|AC")
    key_a, key_b, key_c = (RecordingCache.key(scope, rid) for scope in (scope_a, scope_b, scope_c))
    assert len({key_a, key_b, key_c}) == 3
    assert key_a.startswith(f"rg:v3:{SHAPE}:twilio:") and key_a.endswith(rid)
    assert "AC" + "1" * 32 not in key_a


def test_a_service_keys_only_its_configured_accounts() -> None:
    with pytest.raises(ProviderNotConfiguredError):
        RecordingService({}).key_scope(TW)


def test_codec_round_trip() -> None:
    moment = datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=UTC)
    recording = Recording(
        provider=Provider.BIRD,
        id="5b74ee9e-9d45-473a-82cd-f1f7feea6bbd",
        status=RecordingStatus.COMPLETED,
        provider_status="available",
        account_id="w",
        call_id="c",
        source="create-call",
        direction=CallDirection.OUTBOUND,
        from_="+3197004499436",
        to="+351919150029",
        channels=2,
        duration_seconds=29,
        started_at=moment,
        ended_at=moment,
        created_at=moment,
        updated_at=moment,
        price=Money(Decimal("0.00250"), "USD"),
        error_code="13617",
        media_formats=(MediaFormat.MP3,),
        raw={"nested": {"list": [1, "two", None]}},
    )
    assert decode(encode(recording)) == recording
    bare = dataclasses.replace(recording, price=None, direction=None, started_at=None)
    assert decode(encode(bare)) == bare


async def test_repeated_query_is_served_from_cache(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for provider in Provider:
        rid = sandbox.sample_ids()[provider.value]
        first = await fetch_recording(gateway, provider, rid)
        second = await fetch_recording(gateway, provider, rid)
        assert first == second
        assert "errors" not in first
        assert upstream_count(sandbox, rid) == 1


async def test_not_found_is_cached_briefly_and_other_errors_never(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    missing = "RE" + "0" * 32
    rid = sandbox.sample_ids()["twilio"]
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(env_with(sandbox_config), transport) as client:
        for _ in range(3):
            body = await fetch_recording(client, TW, missing)
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert upstream_count(sandbox, missing) == 1

        sandbox.faults.inject("twilio", 500)  # not retried: one upstream request
        failed = await fetch_recording(client, TW, rid)
        assert failed["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
        ok = await fetch_recording(client, TW, rid)
        assert "errors" not in ok
        assert upstream_count(sandbox, rid) == 2

    settings = env_with(sandbox_config, GATEWAY_CACHE_TTL_NOT_FOUND="0")
    async with gateway_client(settings, transport) as client:
        await fetch_recording(client, TW, missing)
        await fetch_recording(client, TW, missing)
    assert upstream_count(sandbox, missing) == 3


async def test_cache_off(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    settings = env_with(sandbox_config, GATEWAY_CACHE_URL="none://")
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for _ in range(3):
            assert "errors" not in await fetch_recording(client, Provider.BIRD, rid)
    assert upstream_count(sandbox, rid) == 3


@pytest.mark.parametrize("sandbox_config", [SandboxConfig(latency=0.05)])
@pytest.mark.parametrize("cache_url", ["none://", "memory://"])
async def test_single_flight_for_concurrent_identical_queries(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox, cache_url: str
) -> None:
    rid = sandbox.sample_ids()["signalwire"]
    settings = env_with(sandbox_config, GATEWAY_CACHE_URL=cache_url)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        calls = (fetch_recording(client, Provider.SIGNALWIRE, rid) for _ in range(50))
        bodies = await asyncio.gather(*calls)
    assert all(body == bodies[0] and "errors" not in body for body in bodies)
    assert upstream_count(sandbox, rid) == 1


async def test_listing_bird_url_is_never_cached(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = await fetch_recording(gateway, Provider.BIRD, rid)
    assert "url" not in body["data"]["recording"]["raw"]
    assert "X-Amz" not in str(await fetch_recording(gateway, Provider.BIRD, rid))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_CACHE_URL": "memcached://x"}, "scheme 'memcached'"),
        ({"GATEWAY_CACHE_URL": "redis://:hunter2@/0"}, "redis://"),
        ({"GATEWAY_CACHE_URL": "redis://localhost:6379/zero"}, "redis://"),
        ({"GATEWAY_CACHE_MAX_ENTRIES": "0"}, "GATEWAY_CACHE_MAX_ENTRIES"),
        ({"GATEWAY_CACHE_TTL": "-5"}, "GATEWAY_CACHE_TTL"),
    ],
)
def test_bad_cache_configuration_fails_at_start(env: dict[str, str], message: str) -> None:
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env)
    assert "hunter2" not in str(caught.value)


def test_redis_url_parsed_and_password_hidden() -> None:
    settings = Settings.from_env({"GATEWAY_CACHE_URL": "redis://:hunter2@cache.internal:6380/3"})
    cache = settings.cache
    assert (cache.kind, cache.host, cache.port, cache.db) == ("redis", "cache.internal", 6380, 3)
    assert str(cache.password) == "hunter2"
    assert "hunter2" not in repr(settings)
