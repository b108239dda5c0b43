"""Stale if error: a recording past its TTL is served (and listed in ``extensions.stale``)
when the provider fails to refresh it with PROVIDER_UNAVAILABLE or PROVIDER_RATE_LIMITED,
never for NOT_FOUND or an auth failure; with the memory cache and with a real Redis.

The gateway's cache reads an injected wall clock (``create_app(cache_clock=...)``), moved
past the TTL by hand: no sleeps. Faults are injected for more requests than any retry policy
makes (``TIMES``), and cleared after each step.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from app.main import create_app
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import RECORDING_QUERY, sandbox_env, upstream_count

pytestmark = pytest.mark.anyio

#: The default TTL of a recording in a final state, and the default stale window.
TTL = 3600
STALE = 86400
#: Uses of an injected fault: more than any retry policy of the gateway makes.
TIMES = 10

BATCH_QUERY = """
query Batch($refs: [RecordingRefInput!]!) {
  recordingsByRef(refs: $refs) { provider id status }
}
"""


class Clock:
    """The cache's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def cache_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """GATEWAY_CACHE_URL for each backend (Redis: pytest-redis's server, emptied per test)."""
    if request.param == "memory":
        return {"GATEWAY_CACHE_URL": "memory://"}
    proc: Any = request.getfixturevalue("redis_proc")
    request.getfixturevalue("redisdb")  # empties the database after the test
    # A second per Redis call: on a busy machine a read must not become a bypass (a miss).
    return {"GATEWAY_CACHE_URL": f"redis://{proc.host}:{proc.port}/0", "GATEWAY_CACHE_TIMEOUT": "1"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@contextlib.asynccontextmanager
async def gateway_at(
    config: SandboxConfig, sandbox_app: Starlette, clock: Clock, **env: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway over the sandbox, its cache on ``clock``."""
    settings = Settings.from_env({**sandbox_env(config), **env})
    app = create_app(settings, transport=httpx.ASGITransport(app=sandbox_app), cache_clock=clock)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


async def get(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> tuple[httpx.Response, dict[str, Any]]:
    """A query over GET (the cacheable method), and its decoded body."""
    response = await client.get(
        "/graphql", params={"query": query, "variables": json.dumps(variables)}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return response, body


async def one(client: httpx.AsyncClient, rid: str) -> tuple[httpx.Response, dict[str, Any]]:
    return await get(client, RECORDING_QUERY, {"provider": "TWILIO", "id": rid})


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (429, 3600)])
async def test_a_failed_refresh_serves_the_stale_recording(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
    status: int,
    retry_after: int | None,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        cached, first = await one(client, rid)
        assert "errors" not in first
        assert cached.headers["cache-control"].startswith("private, max-age=")

        clock.now += TTL + 1
        sandbox.faults.inject("twilio", status, times=TIMES, retry_after=retry_after)
        before = upstream_count(sandbox, rid)
        response, stale = await one(client, rid)
        assert upstream_count(sandbox, rid) > before  # a refresh was tried
        assert "errors" not in stale, stale
        assert stale["data"] == first["data"]
        assert stale["extensions"]["stale"] == [["recording"]]
        assert response.headers["cache-control"] == "no-store"
        assert "etag" not in response.headers

        sandbox.faults.clear()
        response, refreshed = await one(client, rid)
        assert "extensions" not in refreshed
        assert refreshed["data"] == first["data"]
        assert response.headers["cache-control"].startswith("private, max-age=")


@pytest.mark.parametrize(("status", "code"), [(404, "NOT_FOUND"), (401, "PROVIDER_AUTH_FAILED")])
async def test_not_found_and_auth_failures_are_never_hidden_by_a_stale_copy(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
    status: int,
    code: str,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        assert "errors" not in (await one(client, rid))[1]
        clock.now += TTL + 1
        sandbox.faults.inject("twilio", status, times=TIMES)
        response, body = await one(client, rid)
        assert codes(body) == [code]
        assert body["data"] == {"recording": None}
        assert "extensions" not in body
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("env", "advance"),
    [({}, TTL + STALE + 1), ({"GATEWAY_CACHE_STALE_TTL": "0"}, TTL + 1)],
    ids=["past-the-stale-window", "stale-off"],
)
async def test_past_the_stale_window_a_failure_is_an_error(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
    env: dict[str, str],
    advance: int,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env, **env) as client:
        assert "errors" not in (await one(client, rid))[1]
        clock.now += advance
        sandbox.faults.inject("twilio", 503, times=TIMES)
        _, body = await one(client, rid)
        assert codes(body) == ["PROVIDER_UNAVAILABLE"]
        assert "extensions" not in body


async def test_within_the_stale_window_until_its_last_second(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        assert "errors" not in (await one(client, rid))[1]
        clock.now += TTL + STALE - 1
        sandbox.faults.inject("twilio", 500, times=TIMES)
        _, body = await one(client, rid)
        assert body["extensions"] == {"stale": [["recording"]]}


async def test_a_batch_names_only_the_stale_indices(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
) -> None:
    """One Twilio ref cached before the TTL passed (stale once Twilio fails), one SignalWire
    ref cached after (fresh); each twice, loaded once, the Twilio ref stale at both indices."""
    old = sandbox.sample_ids()["twilio"]
    new = sandbox.sample_ids()["signalwire"]
    refs = [
        {"provider": "SIGNALWIRE", "id": new},
        {"provider": "TWILIO", "id": old},
        {"provider": "SIGNALWIRE", "id": new},
        {"provider": "TWILIO", "id": old},
    ]
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        assert "errors" not in (await get(client, BATCH_QUERY, {"refs": refs[1:2]}))[1]
        clock.now += TTL + 1
        assert "errors" not in (await get(client, BATCH_QUERY, {"refs": refs[:1]}))[1]
        sandbox.faults.inject("twilio", 503, times=TIMES)
        response, body = await get(client, BATCH_QUERY, {"refs": refs})
    assert "errors" not in body, body
    assert [item["id"] for item in body["data"]["recordingsByRef"]] == [new, old, new, old]
    assert body["extensions"]["stale"] == [["recordingsByRef", 1], ["recordingsByRef", 3]]
    assert response.headers["cache-control"] == "no-store"


async def test_aliases_name_their_own_paths(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
) -> None:
    stale_id = sandbox.sample_ids()["twilio"]
    query = """
    query Two($tw: ID!, $sw: ID!) {
      old: recording(provider: TWILIO, id: $tw) { id }
      new: recording(provider: SIGNALWIRE, id: $sw) { id }
    }
    """
    ids = {"tw": stale_id, "sw": sandbox.sample_ids()["signalwire"]}
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        assert "errors" not in (await one(client, stale_id))[1]
        clock.now += TTL + 1
        sandbox.faults.inject("twilio", 503, times=TIMES)
        _, body = await get(client, query, ids)
    assert "errors" not in body, body
    assert body["data"] == {"old": {"id": stale_id}, "new": {"id": ids["sw"]}}
    assert body["extensions"]["stale"] == [["old"]]


async def test_recordings_a_listing_cached_are_kept_stale_too(
    cache_env: dict[str, str],
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    clock: Clock,
) -> None:
    """A listing's recordings are cached (``RecordingService.remember``) with the same stale
    window: one never fetched by itself is still served when Twilio fails past its TTL."""
    listing = """
    query { recordings(first: 20, filter: {providers: [TWILIO]}) { edges { node { id status } } } }
    """
    async with gateway_at(sandbox_config, sandbox_app, clock, **cache_env) as client:
        _, page = await get(client, listing, {})
        assert "errors" not in page, page
        done = [
            edge["node"]["id"]
            for edge in page["data"]["recordings"]["edges"]
            if edge["node"]["status"] == "COMPLETED"
        ]
        assert done
        rid = done[0]
        assert upstream_count(sandbox, rid) == 0  # only listed, never fetched by itself
        clock.now += TTL + 1
        sandbox.faults.inject("twilio", 503, times=TIMES)
        _, body = await one(client, rid)
    assert "errors" not in body, body
    assert body["data"]["recording"]["id"] == rid
    assert body["extensions"]["stale"] == [["recording"]]
