"""The response cache in one process (``memory://``): what is kept, for how long, what is
never kept, what a hit still costs, and what a change of a recording purges."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.applications import Starlette

from app.access.keys import new_key
from app.cache import BoundedMemoryCache, RecordingCache, TtlPolicy
from app.errors import ConfigError, RecordingNotFoundError
from app.models import Provider, Recording, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig
from app.schema.http_cache import Freshness
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.responses.support import (
    BY_REF,
    LISTING,
    MEDIA,
    ONE,
    Clock,
    gateway,
    max_age,
    metric,
    one,
    params,
    settings_for,
)
from tests.support import sandbox_env, upstream_count

pytestmark = pytest.mark.anyio

TTL = 100


def done_id(sandbox: Sandbox, provider: str = "twilio") -> str:
    return sandbox.sample_ids()[provider]


def active_id(sandbox: Sandbox) -> str:
    return next(r.id for r in sandbox.dataset.listing("twilio") if r.running)


async def test_a_repeated_query_is_a_hit_with_the_same_bytes_and_headers(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = done_id(sandbox)
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        miss = await client.get("/graphql", params=one("TWILIO", rid))
        asked = upstream_count(sandbox, rid)
        hit = await client.get("/graphql", params=one("TWILIO", rid))
        posted = await client.post("/graphql", json={"query": ONE, "variables": one_vars(rid)})
    assert miss.headers["x-cache"] == "MISS" and hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content and hit.json()["data"]["recording"]["id"] == rid
    assert hit.headers["content-type"] == miss.headers["content-type"]
    assert hit.headers["etag"] == miss.headers["etag"]
    assert max_age(miss) - 1 <= max_age(hit) <= max_age(miss)
    assert hit.headers["vary"] == miss.headers["vary"]
    # POST finds the same entry (the body is the same), and is never cached by HTTP caches.
    assert posted.headers["x-cache"] == "HIT" and posted.content == miss.content
    assert posted.headers["cache-control"] == "no-store"
    assert upstream_count(sandbox, rid) == asked


def one_vars(rid: str) -> dict[str, str]:
    return {"provider": "TWILIO", "id": rid}


async def test_a_hit_answers_304_to_its_etag(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    query = one("TWILIO", done_id(sandbox))
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        miss = await client.get("/graphql", params=query)
        again = await client.get(
            "/graphql", params=query, headers={"if-none-match": miss.headers["etag"]}
        )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["x-cache"] == "HIT" and again.headers["etag"] == miss.headers["etag"]


async def test_a_hit_executes_nothing(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """No resolver runs on a hit: the recording cache is not even asked (a miss over a
    warm recording cache asks it once per recording)."""
    rid = done_id(sandbox)
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        await client.get("/graphql", params=one("TWILIO", rid))  # miss: cached recording
        aliased = "query Again($provider: Provider!, $id: ID!) { again: " + ONE.split("{", 1)[1]
        miss = await client.get("/graphql", params=params(aliased, one_vars(rid)))
        assert miss.headers["x-cache"] == "MISS"
        before = (await client.get("/metrics")).text
        for _ in range(3):
            hit = await client.get("/graphql", params=params(aliased, one_vars(rid)))
            assert hit.headers["x-cache"] == "HIT"
        after = (await client.get("/metrics")).text
    lookups = "gateway_cache_lookups_total"
    assert metric(after, lookups, result="hit") == metric(before, lookups, result="hit")
    assert metric(after, lookups, result="miss") == metric(before, lookups, result="miss")
    requests = "gateway_graphql_requests_total"
    assert sum_samples(after, requests) - sum_samples(before, requests) == 3  # still counted


def sum_samples(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")
    )


async def test_answers_with_errors_media_links_listings_or_nothing_bounded_are_not_kept(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = done_id(sandbox)
    requests = {
        "error": one("TWILIO", "RE" + "0" * 32),
        "bad input": one("TWILIO", "not-an-id"),
        "media link": params(MEDIA, one_vars(rid)),
        "listing": params(LISTING),
        "unbounded": params("{ __typename }"),
        "mutation": params("mutation { recording }"),
        "subscription": params("subscription { recording }"),
    }
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        for name, query in requests.items():
            for _ in range(2):
                response = await client.post(
                    "/graphql",
                    json={"query": query["query"], "variables": json.loads(query["variables"])},
                )
                assert response.headers.get("x-cache") == "MISS", (name, response.text)
    media = requests["media link"]
    assert "mediaUrl" in media["query"]


async def test_active_recordings_are_kept_for_their_ttl_and_never_by_clients(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """An active recording is cached for GATEWAY_CACHE_TTL_ACTIVE: the answer holding it
    is kept that long too (a miss would answer the same), still ``no-store`` for clients;
    with a TTL of 0 it is not kept at all."""
    query = one("TWILIO", active_id(sandbox))
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        miss = await client.get("/graphql", params=query)
        hit = await client.get("/graphql", params=query)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert hit.content == miss.content
    assert hit.headers["cache-control"] == miss.headers["cache-control"] == "no-store"
    zero = settings_for(sandbox_config, GATEWAY_CACHE_TTL_ACTIVE="0")
    async with gateway(zero, sandbox_app) as client:
        for _ in range(2):
            response = await client.get("/graphql", params=query)
            assert response.headers["x-cache"] == "MISS"


async def test_a_stale_answer_is_not_kept(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = done_id(sandbox)
    clock = Clock()
    settings = settings_for(sandbox_config, GATEWAY_CACHE_TTL=str(TTL))
    async with gateway(settings, sandbox_app, clock) as client:
        await client.get("/graphql", params=one("TWILIO", rid))
        clock.now += TTL + 1
        sandbox.faults.inject("twilio", 503, times=10)
        for _ in range(2):
            stale = await client.get("/graphql", params=one("TWILIO", rid))
            assert stale.json()["extensions"]["stale"] == [["recording"]]
            assert stale.headers["x-cache"] == "MISS"
        sandbox.faults.clear()
        fresh = await client.get("/graphql", params=one("TWILIO", rid))
        assert "extensions" not in fresh.json() and fresh.headers["x-cache"] == "MISS"


async def test_an_answer_lives_as_long_as_its_earliest_recording(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    first, second = [r.id for r in sandbox.dataset.listing("twilio") if r.ready][:2]
    clock = Clock()
    settings = settings_for(sandbox_config, GATEWAY_CACHE_TTL=str(TTL))
    refs = {"refs": [{"provider": "TWILIO", "id": first}, {"provider": "TWILIO", "id": second}]}
    async with gateway(settings, sandbox_app, clock) as client:
        await client.get("/graphql", params=one("TWILIO", first))  # cached at 0: until TTL
        clock.now += 30
        miss = await client.get("/graphql", params=params(BY_REF, refs))  # second until 30+TTL
        assert miss.headers["x-cache"] == "MISS"
        clock.now += TTL - 30 - 1
        assert (await client.get("/graphql", params=params(BY_REF, refs))).headers[
            "x-cache"
        ] == "HIT"
        clock.now += 1  # the first recording's entry expires: so does the answer
        after = await client.get("/graphql", params=params(BY_REF, refs))
        assert after.headers["x-cache"] == "MISS"


def test_the_max_age_of_a_kept_answer_shrinks_as_it_ages() -> None:
    now = [1_000.0]
    freshness = Freshness.restored(1_100.0, None, clock=lambda: now[0])
    assert freshness.max_age() == 100
    now[0] += 60.5
    assert freshness.max_age() == 39
    assert Freshness.restored(1_100.0, "an active recording").max_age() == 0


async def test_a_listing_that_finds_a_new_state_purges_the_answers_holding_it(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    record = next(r for r in sandbox.dataset.listing("twilio") if r.ready)
    other = next(r for r in sandbox.dataset.listing("twilio") if r.ready and r.id != record.id)
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        for rid in (record.id, other.id):
            await client.get("/graphql", params=one("TWILIO", rid))
            assert (await client.get("/graphql", params=one("TWILIO", rid))).headers[
                "x-cache"
            ] == "HIT"
        await client.get("/graphql", params=params(LISTING))  # the same states: nothing goes
        assert (await client.get("/graphql", params=one("TWILIO", record.id))).headers[
            "x-cache"
        ] == "HIT"
        sandbox.dataset.put(dataclasses.replace(record, duration=record.duration + 7))
        await client.get("/graphql", params=params(LISTING))  # stores the new state
        changed = await client.get("/graphql", params=one("TWILIO", record.id))
        untouched = await client.get("/graphql", params=one("TWILIO", other.id))
    assert changed.headers["x-cache"] == "MISS"
    assert changed.json()["data"]["recording"]["durationSeconds"] == record.duration + 7
    assert untouched.headers["x-cache"] == "HIT"


async def test_a_persisted_query_hash_finds_the_entry_of_its_text(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = done_id(sandbox)
    digest = hashlib.sha256(ONE.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        full = await client.post(
            "/graphql", json={"query": ONE, "variables": one_vars(rid), "extensions": persisted}
        )
        by_hash = await client.post(
            "/graphql", json={"variables": one_vars(rid), "extensions": persisted}
        )
    assert full.headers["x-cache"] == "MISS"
    assert by_hash.headers["x-cache"] == "HIT" and by_hash.content == full.content


async def test_a_hit_is_charged_to_the_rate_limit(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    query = one("TWILIO", done_id(sandbox))
    settings = settings_for(sandbox_config, GATEWAY_RATE_LIMIT="3/minute")
    async with gateway(settings, sandbox_app) as client:
        answers = [await client.get("/graphql", params=query) for _ in range(4)]
    assert [a.headers.get("x-cache") for a in answers[:3]] == ["MISS", "HIT", "HIT"]
    refused = answers[3]
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_asking_for_the_cost_bypasses_the_cache(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    query = one("TWILIO", done_id(sandbox))
    async with gateway(settings_for(sandbox_config), sandbox_app) as client:
        await client.get("/graphql", params=query)
        costed = await client.get("/graphql", params=query, headers={"x-gateway-cost": "1"})
    assert "x-cache" not in costed.headers
    assert costed.json()["extensions"]["cost"] >= 1


async def test_turned_off_nothing_is_kept(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = done_id(sandbox)
    settings = settings_for(sandbox_config, GATEWAY_RESPONSE_CACHE="off")
    assert not settings.response_cache
    async with gateway(settings, sandbox_app) as client:
        answers = [await client.get("/graphql", params=one("TWILIO", rid)) for _ in range(2)]
        before = (await client.get("/metrics")).text
        await client.get("/graphql", params=one("TWILIO", rid))
        after = (await client.get("/metrics")).text
    assert all("x-cache" not in a.headers for a in answers)
    assert answers[0].content == answers[1].content
    lookups = "gateway_cache_lookups_total"
    assert metric(after, lookups, result="hit") == metric(before, lookups, result="hit") + 1


def test_the_setting_is_on_or_off(sandbox_config: SandboxConfig) -> None:
    assert Settings.from_env(sandbox_env(sandbox_config)).response_cache
    for value in ("ON", "on"):
        assert settings_for(sandbox_config, GATEWAY_RESPONSE_CACHE=value).response_cache
    with pytest.raises(ConfigError, match="GATEWAY_RESPONSE_CACHE must be on or off"):
        settings_for(sandbox_config, GATEWAY_RESPONSE_CACHE="yes")


async def test_without_a_cache_backend_there_is_no_response_cache(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = settings_for(sandbox_config, GATEWAY_CACHE_URL="none://")
    async with gateway(settings, sandbox_app) as client:
        answer = await client.get("/graphql", params=one("TWILIO", done_id(sandbox)))
    assert answer.status_code == 200 and "x-cache" not in answer.headers


def test_keys_name_tenant_scopes_document_operation_and_variables() -> None:
    key = RecordingCache.response_key
    acme = ["acme|https://api.twilio.com|AC1"]
    base = key(acme, {"recordings:read", "media:read"}, ONE, "One", {"id": "1", "p": "X"})
    assert base == key(acme, ["media:read", "recordings:read"], ONE, "One", {"p": "X", "id": "1"})
    different = [
        key(
            ["globex|https://api.twilio.com|AC1"],
            {"recordings:read", "media:read"},
            ONE,
            "One",
            {"id": "1", "p": "X"},
        ),
        key(
            ["acme|https://api.twilio.com|AC2"],
            {"recordings:read", "media:read"},
            ONE,
            "One",
            {"id": "1", "p": "X"},
        ),
        key(acme, {"recordings:read"}, ONE, "One", {"id": "1", "p": "X"}),
        key(acme, {"recordings:read", "media:read"}, ONE + " ", "One", {"id": "1", "p": "X"}),
        key(acme, {"recordings:read", "media:read"}, ONE, None, {"id": "1", "p": "X"}),
        key(acme, {"recordings:read", "media:read"}, ONE, "One", {"id": "2", "p": "X"}),
    ]
    assert len({base, *different}) == 7
    assert "acme" not in base and "AC1" not in base and "recordings" not in base


async def test_the_recording_cache_reports_a_new_state_and_a_deletion_not_the_same_state() -> None:
    """``RecordingCache.on_change`` (what the response cache's purge is wired to): told of a
    refresh or a store that finds a different recording, or NOT_FOUND where one was; not of
    one that finds the same."""
    now = [1_000.0]
    cache = RecordingCache(BoundedMemoryCache(10), TtlPolicy(terminal=TTL), clock=lambda: now[0])
    changed: list[list[str]] = []

    async def on_change(keys: Sequence[str]) -> None:
        changed.append(list(keys))

    cache.on_change = on_change
    done = Recording(Provider.TWILIO, "RE" + "1" * 32, RecordingStatus.COMPLETED, "completed")
    states: list[Recording | None] = [done, done, replace(done, duration_seconds=9), None]

    async def load() -> Recording:
        state = states.pop(0)
        if state is None:
            raise RecordingNotFoundError("gone", provider=Provider.TWILIO)
        return state

    fresh = await cache.fetch("k", load)
    assert fresh.key == "k" and changed == []
    now[0] += TTL + 1
    await cache.fetch("k", load)  # the same state: nothing to purge
    assert changed == []
    now[0] += TTL + 1
    await cache.fetch("k", load)
    assert changed == [["k"]]
    await cache.store("k", done)  # a listing finds it changed back
    assert changed == [["k"], ["k"]]
    await cache.store("k", done)
    assert changed == [["k"], ["k"]]
    now[0] += TTL + 1
    with pytest.raises(RecordingNotFoundError):
        await cache.fetch("k", load)
    assert changed == [["k"], ["k"], ["k"]]


async def test_a_caller_without_media_read_is_refused_the_link_and_that_is_not_kept(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    listener, full = new_key(), new_key()
    tenants = {
        "listener": TenantSpec(listener, scopes=["recordings:read"]),
        "full": TenantSpec(full),
    }
    settings = Settings.from_env(write_config(tmp_path / "gateway.toml", sandbox_config, tenants))
    rid = done_id(sandbox)
    async with gateway(settings, sandbox_app) as client:
        for _ in range(2):
            refused = await client.get(
                "/graphql", params=params(MEDIA, one_vars(rid)), headers=bearer(listener)
            )
            assert refused.json()["data"]["recording"]["mediaUrl"] is None
            [error] = refused.json()["errors"]
            assert error["extensions"]["code"] == "FORBIDDEN"
            assert refused.headers["x-cache"] == "MISS"
        plain = one("TWILIO", rid)
        answers = [
            await client.get("/graphql", params=plain, headers=bearer(key))
            for key in (listener, full, listener, full)
        ]
    assert [a.headers["x-cache"] for a in answers] == ["MISS", "MISS", "HIT", "HIT"]
    assert len({a.content for a in answers}) == 1  # the same data, each from its own entry
