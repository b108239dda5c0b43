"""Persisted queries end to end, over ``create_app`` and the sandbox: the Automatic
Persisted Queries protocol as Apollo Client's link speaks it (POST and GET), the hash
checks, the allowlist (both manifest formats) and ``off``. A refused or unknown hash never
reaches a provider."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import new_key
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.persisted.support import (
    NOT_FOUND_BODY,
    ApolloPersistedLink,
    Exchange,
    persisted,
    printed,
    sha256,
)
from tests.support import RECORDING_QUERY, gateway_client, sandbox_env, upstream_count

pytestmark = pytest.mark.anyio

ONE = "One"  # RECORDING_QUERY's operation name
OTHER = "query Typename { __typename }"


def variables(sandbox: Sandbox) -> dict[str, str]:
    return {"provider": "TWILIO", "id": sandbox.sample_ids()["twilio"]}


@pytest.fixture
def mode_env(sandbox_config: SandboxConfig) -> dict[str, str]:
    return sandbox_env(sandbox_config)


@contextlib.asynccontextmanager
async def client_for(
    env: Mapping[str, str], sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env(env)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


@pytest.fixture
async def apq(mode_env: dict[str, str], sandbox_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(mode_env, sandbox_app) as client:
        yield client


def assert_data(body: Mapping[str, Any], rid: str) -> None:
    assert "errors" not in body, body
    assert body["data"]["recording"]["id"] == rid


# --- apq (the default) ---------------------------------------------------------------


async def test_the_apollo_links_sequence_over_post(
    apq: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    link = ApolloPersistedLink(apq)
    assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
    first, second = link.exchanges
    assert first == Exchange("POST", False, 200, NOT_FOUND_BODY)  # exactly Apollo's answer
    assert (second.method, second.with_query, second.status) == ("POST", True, 200)
    assert upstream_count(sandbox, rid) == 1  # the hash alone asked no provider
    # Known now: the hash alone runs it.
    again = ApolloPersistedLink(apq)
    assert await again.run(RECORDING_QUERY, variables(sandbox), ONE) == second.body
    assert [(e.method, e.with_query, e.status) for e in again.exchanges] == [("POST", False, 200)]


async def test_hashed_queries_over_get(apq: httpx.AsyncClient, sandbox: Sandbox) -> None:
    """``useGETForHashedQueries``: the hash by GET (with ``Accept: */*``, which without the
    hash would be a request for GraphiQL), the query by POST when it is not known."""
    rid = sandbox.sample_ids()["twilio"]
    link = ApolloPersistedLink(apq, use_get_for_hashed_queries=True)
    assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
    assert [(e.method, e.with_query, e.status) for e in link.exchanges] == [
        ("GET", False, 200),
        ("POST", True, 200),
    ]
    assert link.exchanges[0].body == NOT_FOUND_BODY
    link.exchanges.clear()
    assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
    assert [(e.method, e.with_query) for e in link.exchanges] == [("GET", False)]


async def test_a_query_registered_by_get_runs_by_post(apq: httpx.AsyncClient) -> None:
    params = {"query": OTHER, "extensions": json.dumps(persisted(OTHER))}
    registered = await apq.get("/graphql", params=params)
    assert registered.json() == {"data": {"__typename": "Query"}}
    hashed = await apq.post("/graphql", json={"extensions": persisted(OTHER)})
    assert hashed.json() == {"data": {"__typename": "Query"}}


def refused_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"errors"}, body
    [error] = body["errors"]
    code: str = error["extensions"]["code"]
    return code


async def test_a_hash_that_is_not_its_querys_is_bad_user_input_and_not_stored(
    apq: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    text = printed(RECORDING_QUERY)
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha256(OTHER)}}
    body = {"query": text, "variables": variables(sandbox), "extensions": wrong}
    response = await apq.post("/graphql", json=body)
    assert response.status_code == 400 and refused_code(response) == "BAD_USER_INPUT"
    assert response.json()["errors"][0]["message"] == "provided sha does not match query"
    # Neither hash now names the query.
    for hashed in (wrong, persisted(text)):
        lookup = await apq.post(
            "/graphql", json={"variables": variables(sandbox), "extensions": hashed}
        )
        assert lookup.status_code == 200 and lookup.json() == NOT_FOUND_BODY
    assert sandbox.requests == []


@pytest.mark.parametrize(
    "extension",
    [
        {"version": 2, "sha256Hash": sha256(OTHER)},
        {"sha256Hash": sha256(OTHER)},
        {"version": 1},
        {"version": 1, "sha256Hash": 7},
        {"version": 1, "sha256Hash": "abc"},
        {"version": 1, "sha256Hash": "g" * 64},
        "not an object",
    ],
    ids=["version-2", "no-version", "no-hash", "hash-number", "hash-short", "hash-not-hex", "str"],
)
async def test_a_malformed_extension_is_bad_user_input(
    apq: httpx.AsyncClient, sandbox: Sandbox, extension: Any
) -> None:
    for body in (
        {"extensions": {"persistedQuery": extension}},
        {"query": OTHER, "extensions": {"persistedQuery": extension}},
    ):
        response = await apq.post("/graphql", json=body)
        assert response.status_code == 400, response.text
        assert refused_code(response) == "BAD_USER_INPUT"
    params = {"extensions": json.dumps({"persistedQuery": extension})}
    response = await apq.get("/graphql", params=params, headers={"accept": "*/*"})
    assert response.status_code == 400 and refused_code(response) == "BAD_USER_INPUT"
    assert sandbox.requests == []


async def test_an_upper_case_hash_names_the_same_query(apq: httpx.AsyncClient) -> None:
    upper = {"persistedQuery": {"version": 1, "sha256Hash": sha256(OTHER).upper()}}
    await apq.post("/graphql", json={"query": OTHER, "extensions": upper})
    response = await apq.post("/graphql", json={"extensions": persisted(OTHER)})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_without_query_or_hash_the_request_is_still_400(apq: httpx.AsyncClient) -> None:
    bodies: list[dict[str, Any]] = [{}, {"extensions": {}}, {"extensions": {"other": 1}}]
    for body in bodies:
        response = await apq.post("/graphql", json=body)
        assert response.status_code == 400 and refused_code(response) == "BAD_REQUEST"


async def test_each_tenant_has_its_own_hashes(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    """A hash found would tell one tenant that another ran that query (ids and all)."""
    acme, globex = new_key(), new_key()
    tenants = {"acme": TenantSpec(acme), "globex": TenantSpec(globex)}
    env = write_config(tmp_path / "gateway.toml", sandbox_config, tenants)
    async with client_for(env, sandbox_app) as client:
        registered = await client.post(
            "/graphql", json={"query": OTHER, "extensions": persisted(OTHER)}, headers=bearer(acme)
        )
        assert registered.json() == {"data": {"__typename": "Query"}}
        hashed = {"extensions": persisted(OTHER)}
        assert (
            await client.post("/graphql", json=hashed, headers=bearer(globex))
        ).json() == NOT_FOUND_BODY
        found = await client.post("/graphql", json=hashed, headers=bearer(acme))
        assert found.json() == {"data": {"__typename": "Query"}}


# --- off -----------------------------------------------------------------------------


async def test_off_ignores_the_extension_beside_a_query_and_refuses_it_alone(
    mode_env: dict[str, str], sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    async with client_for(mode_env | {"GATEWAY_PERSISTED_QUERIES": "off"}, sandbox_app) as client:
        alone = await client.post("/graphql", json={"extensions": persisted(OTHER)})
        assert alone.status_code == 200
        assert alone.json() == {
            "errors": [
                {
                    "message": "PersistedQueryNotSupported",
                    "extensions": {"code": "PERSISTED_QUERY_NOT_SUPPORTED"},
                }
            ]
        }
        # Even a malformed extension is ignored beside a query.
        odd = {"query": OTHER, "extensions": {"persistedQuery": {"version": 9}}}
        assert (await client.post("/graphql", json=odd)).json() == {"data": {"__typename": "Query"}}
        # Apollo's link turns hashes off and resends the query; later operations go plain.
        link = ApolloPersistedLink(client, use_get_for_hashed_queries=True)
        assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
        assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
        assert [(e.method, e.with_query, e.status) for e in link.exchanges] == [
            ("GET", False, 200),
            ("POST", True, 200),
            ("POST", True, 200),
        ]
        assert "extensions" not in str(link.exchanges[2])


# --- allowlist -----------------------------------------------------------------------


def apollo_manifest(*bodies: str) -> dict[str, Any]:
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(b), "body": b, "name": b.split()[1].split("(")[0], "type": "query"}
            for b in bodies
        ],
    }


def relay_manifest(*bodies: str) -> dict[str, str]:
    return {hashlib.md5(b.encode()).hexdigest(): b for b in bodies}


@pytest.mark.parametrize("manifest", [apollo_manifest, relay_manifest], ids=["apollo", "relay"])
async def test_the_allowlist_runs_only_the_manifests_operations(
    tmp_path: Path,
    mode_env: dict[str, str],
    sandbox_app: Starlette,
    sandbox: Sandbox,
    manifest: Any,
) -> None:
    allowed = printed(RECORDING_QUERY)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest(allowed)))
    env = mode_env | {
        "GATEWAY_PERSISTED_QUERIES": "allowlist",
        "GATEWAY_PERSISTED_QUERIES_FILE": str(path),
    }
    rid = sandbox.sample_ids()["twilio"]
    async with client_for(env, sandbox_app) as client:
        # The link's hash is found at once, by GET and by POST: nothing to register.
        for use_get in (True, False):
            link = ApolloPersistedLink(client, use_get_for_hashed_queries=use_get)
            assert_data(await link.run(RECORDING_QUERY, variables(sandbox), ONE), rid)
            assert [e.with_query for e in link.exchanges] == [False]
        # The query in full, alone or with its hash.
        for extensions in ({}, persisted(allowed)):
            body = {"query": allowed, "variables": variables(sandbox), "extensions": extensions}
            assert_data((await client.post("/graphql", json=body)).json(), rid)
        # The manifest's own id stands for the operation too.
        md5 = hashlib.md5(allowed.encode()).hexdigest()
        op_id = md5 if manifest is relay_manifest else sha256(allowed)
        by_id = {"persistedQuery": {"version": 1, "sha256Hash": op_id}}
        body = {"variables": variables(sandbox), "extensions": by_id}
        assert_data((await client.post("/graphql", json=body)).json(), rid)
        seen = len(sandbox.requests)
        # Anything else is refused before GraphQL parses it, with no upstream request.
        refused: list[dict[str, Any]] = [
            {"query": OTHER},
            {"query": OTHER, "extensions": persisted(OTHER)},  # no registering in a list
            {"extensions": persisted(OTHER)},
            {"query": allowed + " ", "variables": variables(sandbox)},
            {"query": "{", "extensions": {}},
        ]
        for body in refused:
            response = await client.post("/graphql", json=body)
            assert response.status_code == 400, (body, response.text)
            assert refused_code(response) == "PERSISTED_QUERY_NOT_ALLOWED"
        got = await client.get("/graphql", params={"query": OTHER})
        assert refused_code(got) == "PERSISTED_QUERY_NOT_ALLOWED"
        # The hash of the allowed operation beside another query is not that query's.
        swapped = {"query": OTHER, "extensions": persisted(allowed)}
        response = await client.post("/graphql", json=swapped)
        assert response.status_code == 400 and refused_code(response) == "BAD_USER_INPUT"
        assert len(sandbox.requests) == seen
