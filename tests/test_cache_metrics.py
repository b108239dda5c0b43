"""The cache's metrics: lookups by result, and outages of its backend (a real redis-server,
stopped and started again). The registry is the process's: tests read differences."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
from pytest_redis import factories
from starlette.applications import Starlette

from app.metrics import REGISTRY
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from tests.support import fetch_recording, upstream_count
from tests.test_stale import Clock
from tests.test_stale import gateway_at as stale_gateway_at

pytestmark = pytest.mark.anyio

RESULTS = ("hit", "miss", "stale", "bypassed")
TW = Provider.TWILIO

metrics_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]  # None: any free port


def lookups() -> dict[str, float]:
    """``gateway_cache_lookups`` now, by result."""
    return {
        result: REGISTRY.get_sample_value("gateway_cache_lookups_total", {"result": result}) or 0.0
        for result in RESULTS
    }


def moved(before: dict[str, float]) -> dict[str, float]:
    """The lookups counted since ``before``, only the results that moved."""
    return {result: n - before[result] for result, n in lookups().items() if n != before[result]}


def available() -> float | None:
    return REGISTRY.get_sample_value("gateway_cache_available")


def outages() -> float:
    return REGISTRY.get_sample_value("gateway_cache_outages_total") or 0.0


def gateway_at(
    config: SandboxConfig, sandbox_app: Starlette, clock: Clock, **env: str
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """The stale tests' gateway, counting the recording cache's lookups: no answer kept whole
    (``app.responses``) stands in for them."""
    return stale_gateway_at(config, sandbox_app, clock, GATEWAY_RESPONSE_CACHE="off", **env)


def redis_url(proc: Any) -> str:
    return f"redis://{proc.host}:{proc.port}/0"


async def test_hits_misses_and_stale_answers_are_counted(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    missing = "RE" + "0" * 32
    clock = Clock()
    async with gateway_at(sandbox_config, sandbox_app, clock) as client:
        before = lookups()
        await fetch_recording(client, TW, rid)
        assert moved(before) == {"miss": 1}

        before = lookups()
        await fetch_recording(client, TW, rid)
        await fetch_recording(client, TW, rid)
        assert moved(before) == {"hit": 2}

        before = lookups()
        await fetch_recording(client, TW, missing)
        await fetch_recording(client, TW, missing)  # NOT_FOUND is cached: a hit
        assert moved(before) == {"miss": 1, "hit": 1}

        clock.now += 3601
        sandbox.faults.inject("twilio", 503, times=10)
        before = lookups()
        body = await fetch_recording(client, TW, rid)
        assert body["extensions"]["stale"] == [["recording"]]
        assert moved(before) == {"stale": 1}

        sandbox.faults.clear()
        before = lookups()
        await fetch_recording(client, TW, rid)  # past its TTL, refreshed: a miss
        assert moved(before) == {"miss": 1}


async def test_a_disabled_cache_counts_nothing(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    async with gateway_at(
        sandbox_config, sandbox_app, Clock(), GATEWAY_CACHE_URL="none://"
    ) as client:
        before = lookups()
        for _ in range(2):
            assert "errors" not in await fetch_recording(client, Provider.BIRD, rid)
    assert moved(before) == {}
    assert upstream_count(sandbox, rid) >= 2


async def test_an_outage_is_counted_once_and_the_gauge_follows_it(
    metrics_redis: Any, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """Redis stopped: each lookup is bypassed, the gauge is 0 and one outage is counted, however
    many calls fail; Redis back: the gauge is 1 and lookups hit again. The rate limiter's and
    the persisted queries' Redis (the same server here) never move these metrics."""
    rid = sandbox.sample_ids()["twilio"]
    env = {
        "GATEWAY_CACHE_URL": redis_url(metrics_redis),
        "GATEWAY_CACHE_COOLDOWN": "0",  # every call probes Redis: recovery needs no wait
        "GATEWAY_RATE_LIMIT": "1000/minute",
    }
    async with gateway_at(sandbox_config, sandbox_app, Clock(), **env) as client:
        assert available() == 1
        await fetch_recording(client, TW, rid)
        before, began = lookups(), outages()
        assert "errors" not in await fetch_recording(client, TW, rid)
        assert moved(before) == {"hit": 1}

        metrics_redis.stop()
        try:
            before = lookups()
            for _ in range(3):
                assert "errors" not in await fetch_recording(client, TW, rid)
            assert moved(before) == {"bypassed": 3}
            assert available() == 0
            assert outages() == began + 1
        finally:
            metrics_redis.start()

        before = lookups()
        assert "errors" not in await fetch_recording(client, TW, rid)
        assert available() == 1
        assert outages() == began + 1
        assert "errors" not in await fetch_recording(client, TW, rid)
        back = moved(before)  # a hit or a miss, as the restarted server kept its data or not
        assert "bypassed" not in back and sum(back.values()) == 2, back
        assert back.get("hit", 0) >= 1  # the second lookup at least reads what the first wrote


cooling_redis = factories.redis_proc(port=None)  # type: ignore[arg-type]


async def test_lookups_during_the_cool_down_are_bypassed(
    cooling_redis: Any, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """With the default cool-down, one failed call and then no call at all: each lookup still
    counts as bypassed, and the outage once."""
    rid = sandbox.sample_ids()["signalwire"]
    env = {"GATEWAY_CACHE_URL": redis_url(cooling_redis)}
    async with gateway_at(sandbox_config, sandbox_app, Clock(), **env) as client:
        await fetch_recording(client, Provider.SIGNALWIRE, rid)
        cooling_redis.stop()
        try:
            before, began = lookups(), outages()
            for _ in range(4):
                body = await fetch_recording(client, Provider.SIGNALWIRE, rid)
                assert "errors" not in body
            assert moved(before) == {"bypassed": 4}
            assert outages() == began + 1
            assert available() == 0
        finally:
            cooling_redis.start()
