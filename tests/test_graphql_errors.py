"""Errors that never reach a provider still carry a code, and GraphiQL is served."""

from __future__ import annotations

import httpx
import pytest

from app.sandbox import Sandbox
from tests.support import graphql

pytestmark = pytest.mark.anyio


async def test_validation_errors_have_codes(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    cases = {
        "{ recording(provider: TWILIO, id: 1) { nope } }": "GRAPHQL_VALIDATION_FAILED",
        '{ recording(provider: ACME, id: "x") { id } }': "GRAPHQL_VALIDATION_FAILED",
        "{ recording(provider: TWILIO": "GRAPHQL_PARSE_FAILED",
    }
    for query, code in cases.items():
        body = await graphql(gateway, query)
        assert body["errors"][0]["extensions"]["code"] == code, body
    body = await graphql(
        gateway,
        'query Q($p: Provider!) { recording(provider: $p, id: "x") { id } }',
        {"p": "ACME"},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert sandbox.requests == []


async def test_graphiql_is_served_on_get(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_health_says_nothing_of_the_tenants(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/healthz")
    assert response.json() == {"status": "ok"}


async def test_aliases_cannot_bypass_the_batch_limit(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    fields = " ".join(
        f'a{n}: recording(provider: TWILIO, id: "{rid}") {{ id }}' for n in range(101)
    )
    body = await graphql(gateway, f"{{ {fields} }}")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert sandbox.requests == []
