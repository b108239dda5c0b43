"""What a request may ask: its cost, the tenant's rate, its tokens and depth, and introspection;
each refusal typed and without an upstream request."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

TWILIO_ID = "RE04a3d4b79350a180c170af92def4cbd2"


def refs(count: int) -> str:
    items = ", ".join(f'{{provider: TWILIO, id: "RE{index:032x}"}}' for index in range(count))
    return f"{{ recordingsByRef(refs: [{items}]) {{ id }} }}"


@pytest.fixture
def env(sandbox_config: SandboxConfig) -> dict[str, str]:
    return sandbox_env(sandbox_config)


def gateway_with(
    env: dict[str, str], sandbox: Starlette
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    return gateway_client(Settings.from_env(env), httpx.ASGITransport(app=sandbox))


@pytest.fixture
async def client(env: dict[str, str], sandbox_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_with(env, sandbox_app) as c:
        yield c


async def post(
    client: httpx.AsyncClient, query: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    response = await client.post("/graphql", json={"query": query}, headers=headers or {})
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_a_request_over_the_cost_limit_is_refused_before_any_upstream_call(
    env: dict[str, str], sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    async with gateway_with(env | {"GATEWAY_MAX_COST": "50"}, sandbox_app) as client:
        status, body = await post(client, refs(51))
        assert status == 200
        [error] = body["errors"]
        assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 51, "maxCost": 50}
        assert body["data"] is None
        assert sandbox.requests == []
        status, body = await post(client, refs(50))
        assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"] * 50


async def test_the_default_limit_refuses_three_full_pages_with_media(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    pages = " ".join(
        f"p{n}: recordings(first: 100) {{ nodes {{ id mediaUrl }} }}" for n in range(2)
    )
    _, body = await post(client, f"{{ {pages} }}")
    assert body["errors"][0]["extensions"]["code"] == "COST_LIMIT_EXCEEDED"
    assert sandbox.requests == []


async def test_the_estimate_is_shown_when_asked(client: httpx.AsyncClient) -> None:
    query = f'{{ a: recording(provider: TWILIO, id: "{TWILIO_ID}") {{ id mediaUrl }} }}'
    _, body = await post(client, query, {"x-gateway-cost": "1"})
    assert body["extensions"] == {"cost": 2}
    _, plain = await post(client, query)
    assert "extensions" not in plain


async def test_the_rate_limit_counts_cost_and_answers_429(
    env: dict[str, str], sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    async with gateway_with(env | {"GATEWAY_RATE_LIMIT": "5/minute"}, sandbox_app) as client:
        status, body = await post(client, refs(3))
        assert status == 200
        status, body = await post(client, refs(2))
        assert status == 200
        sandbox.requests.clear()
        response = await client.post("/graphql", json={"query": refs(1)})
        assert response.status_code == 429
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        [error] = response.json()["errors"]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == retry_after
        assert sandbox.requests == []
        # What costs nothing upstream is not counted.
        status, body = await post(client, "{ __typename }")
        assert (status, body["data"]) == (200, {"__typename": "Query"})


async def test_introspection_and_suggestions_are_off_by_default(client: httpx.AsyncClient) -> None:
    _, body = await post(client, "{ __schema { types { name } } }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    _, body = await post(client, '{ recordin(provider: TWILIO, id: "x") { id } }')
    assert "Did you mean" not in body["errors"][0]["message"]
    _, body = await post(client, '{ recording(provider: TWILO, id: "x") { id } }')
    assert "Did you mean" not in body["errors"][0]["message"]


async def test_introspection_and_suggestions_on_request(
    env: dict[str, str], sandbox_app: Starlette
) -> None:
    async with gateway_with(env | {"GATEWAY_INTROSPECTION": "1"}, sandbox_app) as client:
        _, body = await post(client, "{ __schema { queryType { name } } }")
        assert body["data"] == {"__schema": {"queryType": {"name": "Query"}}}
        _, body = await post(client, '{ recordin(provider: TWILIO, id: "x") { id } }')
        assert "Did you mean" in body["errors"][0]["message"]


async def test_a_document_over_the_token_limit_is_not_parsed(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{n}: __typename" for n in range(700))  # 3 tokens each
    _, body = await post(client, f"{{ {fields} }}")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "more than 2000 tokens" in error["message"]


async def test_an_empty_selection_set_is_a_parse_error(client: httpx.AsyncClient) -> None:
    _, body = await post(client, "{ }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "max()" not in error["message"]


async def test_depth_over_the_limit_is_refused(
    env: dict[str, str], sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """The schema nests 5 deep at most, below the default of 12 (Strawberry counts the root
    fields as 0): checked with a lower one."""
    async with gateway_with(env | {"GATEWAY_MAX_DEPTH": "2"}, sandbox_app) as client:
        _, body = await post(client, "{ recordings { edges { node { id } } } }")
        [error] = body["errors"]
        assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        assert "exceeds maximum operation depth of 2" in error["message"]
        assert sandbox.requests == []


async def test_a_request_over_the_whole_rate_budget_is_over_the_cost_limit(
    env: dict[str, str], sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """It could never run, so waiting would not help: not RATE_LIMITED, and nothing spent."""
    async with gateway_with(env | {"GATEWAY_RATE_LIMIT": "5/minute"}, sandbox_app) as client:
        status, body = await post(client, refs(6))
        assert status == 200
        [error] = body["errors"]
        assert error["extensions"] == {"code": "COST_LIMIT_EXCEEDED", "cost": 6, "maxCost": 5}
        assert sandbox.requests == []
        status, body = await post(client, refs(5))
        assert status == 200
