"""recordingStats' closed-period cache: in memory and in Redis, per tenant and request."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from redis import Redis
from starlette.applications import Starlette

from app.models import RecordingStatus
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.listing.support import Criteria, listed
from tests.stats.support import (
    PER_PROVIDER,
    STATS_QUERY,
    TERMINAL,
    answered_rows,
    env,
    expected_rows,
    providers_in,
    stats,
    status_name,
    terminal_run,
)
from tests.support import gateway_client, graphql, secrets_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig(recordings_per_provider=PER_PROVIDER)


#: The same stats as ``STATS_QUERY`` asks for, selected otherwise: another document, so the
#: response cache (whole answers, by document) cannot answer it; only the stats' own cache can.
OTHER_SELECTION = """
query Other($filter: RecordingFilter, $groupBy: [StatsDimension!]!, $timeZone: String!) {
  rows: recordingStats(filter: $filter, groupBy: $groupBy, timeZone: $timeZone) {
    count key { day provider }
  }
}
"""


@pytest.mark.parametrize("responses", ["on", "off"])
async def test_a_closed_period_is_answered_from_the_cache(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox, responses: str
) -> None:
    closed = closed_period(sandbox)
    group_by = ("PROVIDER", "DAY")
    settings = env(sandbox_config, GATEWAY_RESPONSE_CACHE=responses)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        first = await stats(client, closed, group_by, "Europe/Lisbon")
        assert "errors" not in first
        assert sandbox.requests
        sandbox.requests.clear()
        again = await stats(client, closed, group_by, "Europe/Lisbon")
        variables = {"filter": closed.variable(), "groupBy": list(group_by)}
        other = await graphql(client, OTHER_SELECTION, {**variables, "timeZone": "Europe/Lisbon"})
        assert sandbox.requests == []
        assert again == first
        rows = first["data"]["recordingStats"]
        assert other["data"]["rows"] == [
            {
                "count": row["count"],
                "key": {"day": row["key"]["day"], "provider": row["key"]["provider"]},
            }
            for row in rows
        ]
        assert answered_rows(rows) == expected_rows(sandbox, closed, group_by, "Europe/Lisbon")
        # Another grouping, zone or filter is another answer.
        await stats(client, closed, group_by, "UTC")
        assert sandbox.requests


async def test_a_closed_periods_answer_is_reusable_over_http(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    closed = closed_period(sandbox)
    params = {
        "query": STATS_QUERY,
        "variables": json.dumps(
            {"filter": closed.variable(), "groupBy": ["DAY"], "timeZone": "UTC"}
        ),
    }
    first = await gateway.get("/graphql", params=params)
    again = await gateway.get("/graphql", params=params)
    assert first.headers["x-cache"] == "MISS"
    assert again.headers["x-cache"] == "HIT"  # the whole answer, kept by the response cache
    assert again.content == first.content
    cache_control = again.headers["cache-control"]
    assert cache_control.startswith("private, max-age=")
    assert 0 < int(cache_control.split("=")[1]) <= 3600
    # An open period's answer is never reused.
    params["variables"] = json.dumps({"groupBy": ["DAY"], "timeZone": "UTC"})
    open_ = await gateway.get("/graphql", params=params)
    assert open_.headers["cache-control"] == "no-store"
    sandbox.requests.clear()
    assert (await gateway.get("/graphql", params=params)).headers["x-cache"] == "MISS"
    assert sandbox.requests


async def test_an_open_period_is_not_cached(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    future = datetime.now(UTC) + timedelta(hours=1)
    for found in (Criteria(), Criteria(created_before=future)):
        sandbox.requests.clear()
        await stats(gateway, found)
        walked = len(sandbox.requests)
        assert walked == 4  # one page at Twilio and SignalWire, two at Bird
        sandbox.requests.clear()
        await stats(gateway, found)
        assert len(sandbox.requests) == walked


async def test_a_period_holding_an_active_recording_is_not_cached(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    past = datetime.now(UTC) - timedelta(minutes=1)
    active = [r for r in sandbox.dataset if listed(r) and r.created < past]
    active = [r for r in active if status_name(r) not in TERMINAL]
    assert active
    record = active[0]
    # Only recordings that are terminal are counted, yet the period is still open.
    found = Criteria(
        created_after=record.created - timedelta(hours=1),
        created_before=record.created + timedelta(seconds=1),
        statuses=tuple(s for s in RecordingStatus if s.name in TERMINAL),
    )
    await stats(gateway, found)
    sandbox.requests.clear()
    await stats(gateway, found)
    assert sandbox.requests


async def test_a_failed_answer_is_not_cached(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    after, before = terminal_run(sandbox, datetime.now(UTC) - timedelta(minutes=1))
    closed = Criteria(created_after=after, created_before=before)
    sandbox.faults.inject("signalwire", 500)
    failed = await stats(gateway, closed)
    assert providers_in(failed["errors"]) == ["SIGNALWIRE"]
    sandbox.requests.clear()
    whole = await stats(gateway, closed)
    assert "errors" not in whole
    assert sandbox.requests
    assert answered_rows(whole["data"]["recordingStats"]) == expected_rows(
        sandbox, closed, (), "UTC"
    )


def redis_settings(config: SandboxConfig, proc: Any, **extra: str) -> Settings:
    return env(config, GATEWAY_CACHE_URL=f"redis://{proc.host}:{proc.port}/0", **extra)


def closed_period(sandbox: Sandbox) -> Criteria:
    after, before = terminal_run(sandbox, datetime.now(UTC) - timedelta(minutes=1))
    return Criteria(created_after=after, created_before=before)


async def test_closed_period_stats_are_shared_by_replicas_through_redis(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    closed = closed_period(sandbox)
    transport = httpx.ASGITransport(app=sandbox_app)
    settings = redis_settings(sandbox_config, redis_proc)
    async with gateway_client(settings, transport) as a, gateway_client(settings, transport) as b:
        first = await stats(a, closed, ("ACCOUNT", "MONTH"), "Asia/Kolkata")
        assert sandbox.requests
        sandbox.requests.clear()
        again = await stats(b, closed, ("ACCOUNT", "MONTH"), "Asia/Kolkata")
    assert sandbox.requests == []
    assert again == first
    keys = [k.decode() if isinstance(k, bytes) else k for k in redisdb.keys("rg:stats:*")]
    assert len(keys) == 1
    assert re.fullmatch(r"rg:stats:v1:[0-9a-f]{64}", keys[0])
    assert 0 < redisdb.ttl(keys[0]) <= settings.cache.ttl
    for secret in secrets_of(sandbox_config):
        assert secret not in keys[0]


async def test_another_tenant_never_reads_the_stats(
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    closed = closed_period(sandbox)
    transport = httpx.ASGITransport(app=sandbox_app)
    first = redis_settings(sandbox_config, redis_proc)
    # Same credentials, another endpoint: another tenant as far as the cache is concerned.
    other = redis_settings(sandbox_config, redis_proc, BIRD_BASE_URL="http://bird-eu.test")
    async with gateway_client(first, transport) as a, gateway_client(other, transport) as b:
        await stats(a, closed)
        sandbox.requests.clear()
        await stats(b, closed)
    walked = {seen.provider for seen in sandbox.requests}
    assert walked == {"twilio", "signalwire", "bird"}  # every provider walked again
    assert len(redisdb.keys("rg:stats:*")) == 2
