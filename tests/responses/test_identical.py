"""A hit is what a miss would answer at that moment, and tenants never share an entry.

Two gateways over one Redis (pytest-redis's server), with the same tenants: one with the
response cache on, one with it off. They share the recording cache, so at any moment both
would answer a request with the same recordings: every answer of the first (a hit or a miss)
must be byte-identical to the second's fresh execution, with the same caching headers.
Requests are drawn at random (seeded) from queries, field selections, aliases, operation
names, inline arguments or variables, GET or POST, existing, missing, active and malformed
ids, for three tenants: two reading the same accounts (same data, so a shared entry would
not show in the bytes: the first request of each tenant must be a MISS) and one reading
others.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from starlette.applications import Starlette

from app.access.keys import new_key
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.responses.support import gateway

pytestmark = pytest.mark.anyio

ACME, TWIN, GLOBEX = new_key(), new_key(), new_key()
TENANTS = {
    "acme": TenantSpec(ACME),
    "twin": TenantSpec(TWIN),  # acme's accounts: the same data, never the same entries
    "globex": TenantSpec(GLOBEX, accounts={"twilio": 1, "signalwire": 1, "bird": 1}),
}
KEYS = {"acme": ACME, "twin": TWIN, "globex": GLOBEX}
FIELDS = [
    "provider",
    "id",
    "status",
    "providerStatus",
    "durationSeconds",
    "createdAt",
    "channels",
    "from",
    "to",
    "price { amount currency }",
    "mediaFormats",
]
PROVIDERS = {"TWILIO": "twilio", "SIGNALWIRE": "signalwire", "BIRD": "bird"}
SEEDS = [11, 23, 57]


def settings(path: Path, config: SandboxConfig, redis_url: str, **env: str) -> Settings:
    """Over the shared Redis, whose calls may take a second (not the production 0.1 s): on a
    busy machine a slow read would be a bypass, whose answer (`no-store`) is not the one the
    reference gives, and the comparison would fail for the machine's load, not the cache."""
    config_env = write_config(path, config, TENANTS)
    redis = {"GATEWAY_CACHE_URL": redis_url, "GATEWAY_CACHE_TIMEOUT": "1"}
    return Settings.from_env({**config_env, **redis, **env})


@contextlib.asynccontextmanager
async def pair(
    tmp_path: Path, config: SandboxConfig, sandbox_app: Starlette, redis_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    on = settings(tmp_path / "on.toml", config, redis_url)
    off = settings(tmp_path / "off.toml", config, redis_url, GATEWAY_RESPONSE_CACHE="off")
    async with gateway(on, sandbox_app) as cached, gateway(off, sandbox_app) as fresh:
        yield cached, fresh


def ids(sandbox: Sandbox) -> list[tuple[str, str]]:
    """(provider, id) of ready and active recordings of both accounts, and malformed ones."""
    found: list[tuple[str, str]] = []
    for name, provider in PROVIDERS.items():
        for index in (0, 1):
            account = sandbox.account(provider, index)
            listing = sandbox.dataset.listing(provider, account)
            found += [(name, r.id) for r in listing if r.ready][:2]
            found += [(name, r.id) for r in listing if r.running][:1]
    return [*found, ("TWILIO", "RE" + "0" * 32), ("BIRD", "not-an-id")]


def draw(rng: random.Random, refs: list[tuple[str, str]]) -> dict[str, Any]:
    """One request: its document, operation name and variables, and how it is sent."""
    fields = rng.sample(FIELDS, rng.randint(1, 4))
    selection = " ".join(
        f"{'a' + str(rng.randint(0, 9)) + ': ' if rng.random() < 0.3 else ''}{f}" for f in fields
    )
    if "id" not in fields:
        selection += " id"
    alias = rng.choice(["", "one: ", "other: "])
    name = rng.choice([None, "Q", "Read"])
    chosen = [rng.choice(refs) for _ in range(rng.randint(1, 3))]
    variables: dict[str, Any] = {}
    if len(chosen) == 1 and rng.random() < 0.6:
        provider, rid = chosen[0]
        if rng.random() < 0.5:
            variables = {"p": provider, "id": rid}
            head = "($p: Provider!, $id: ID!)"
            root = f"{alias}recording(provider: $p, id: $id) {{ {selection} }}"
        else:
            head = ""
            root = f'{alias}recording(provider: {provider}, id: "{rid}") {{ {selection} }}'
    else:
        variables = {"refs": [{"provider": p, "id": i} for p, i in chosen]}
        head = "($refs: [RecordingRefInput!]!)"
        root = f"{alias}recordingsByRef(refs: $refs) {{ {selection} }}"
    document = f"query {name or ''}{head} {{ {root} }}" if name or head else f"{{ {root} }}"
    return {
        "query": document,
        "operationName": name,
        "variables": variables,
        "get": rng.random() < 0.5,
    }


async def send(client: httpx.AsyncClient, request: dict[str, Any], key: str) -> httpx.Response:
    body = {k: request[k] for k in ("query", "operationName", "variables")}
    if request["get"]:
        params = {"query": body["query"], "variables": json.dumps(body["variables"])}
        if body["operationName"] is not None:
            params["operationName"] = body["operationName"]
        return await client.get("/graphql", params=params, headers=bearer(key))
    return await client.post("/graphql", json=body, headers=bearer(key))


def age(response: httpx.Response) -> int | None:
    value = response.headers["cache-control"]
    return None if value == "no-store" else int(value.rsplit("=", 1)[1])


@pytest.mark.parametrize("seed", SEEDS)
async def test_every_hit_is_what_a_miss_would_answer_and_no_tenant_shares(
    seed: int,
    tmp_path: Path,
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    rng = random.Random(seed)
    refs = ids(sandbox)
    pool = [draw(rng, refs) for _ in range(8)]
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    seen: set[tuple[int, str]] = set()
    hits = 0
    async with pair(tmp_path, sandbox_config, sandbox_app, url) as (cached, fresh):
        for _ in range(80):
            index = rng.randrange(len(pool))
            request, tenant = pool[index], rng.choice(list(KEYS))
            answer = await send(cached, request, KEYS[tenant])
            truth = await send(fresh, request, KEYS[tenant])
            context = (seed, request, tenant, answer.headers.get("x-cache"))
            assert answer.status_code == truth.status_code == 200, context
            assert answer.content == truth.content, context
            assert answer.headers.get("etag") == truth.headers.get("etag"), context
            ages = (age(answer), age(truth))
            assert ages[0] == ages[1] or (
                None not in ages and abs(ages[0] - ages[1]) <= 1  # type: ignore[operator]
            ), context
            assert "x-cache" not in truth.headers
            if (index, tenant) not in seen:
                assert answer.headers["x-cache"] == "MISS", context  # never another's entry
            seen.add((index, tenant))
            hits += answer.headers["x-cache"] == "HIT"
    assert hits >= 10, hits  # the pool repeats: the comparison covered hits


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ({"GATEWAY_MAX_TOKENS": "10"}, "GRAPHQL_PARSE_FAILED"),
        ({"GATEWAY_MAX_ALIASES": "1"}, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_a_hit_is_neither_parsed_nor_validated(
    limit: dict[str, str],
    code: str,
    tmp_path: Path,
    redis_proc: Any,
    redisdb: Redis,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
) -> None:
    """A replica whose limits refuse the document at parse (tokens) or validation (aliases)
    still answers it from the entry another replica stored: nothing was parsed or validated."""
    url = f"redis://{redis_proc.host}:{redis_proc.port}/0"
    lenient = settings(tmp_path / "lenient.toml", sandbox_config, url)
    strict = settings(tmp_path / "strict.toml", sandbox_config, url, **limit)
    rid = sandbox.sample_ids()["twilio"]
    document = f'{{ a: recording(provider: TWILIO, id: "{rid}") {{ b: id status }} }}'
    async with gateway(lenient, sandbox_app) as one, gateway(strict, sandbox_app) as two:
        stored = await one.post("/graphql", json={"query": document}, headers=bearer(ACME))
        assert stored.headers["x-cache"] == "MISS" and "errors" not in stored.json()
        hit = await two.post("/graphql", json={"query": document}, headers=bearer(ACME))
        assert hit.headers["x-cache"] == "HIT" and hit.content == stored.content
        other = document.replace("status", "providerStatus")  # not stored: parsed, refused
        refused = await two.post("/graphql", json={"query": other}, headers=bearer(ACME))
    assert refused.headers["x-cache"] == "MISS"
    assert refused.json()["errors"][0]["extensions"]["code"] == code
