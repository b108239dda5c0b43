"""GraphQL requests counted by operation and outcome, timed, and refusals by the rate limit;
the operation label bounded, whatever names clients send."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.metrics.graphql import ANONYMOUS, MAX_OPERATIONS, OTHER, OperationLabels
from app.sandbox import Sandbox, SandboxConfig
from tests.metrics.support import Scrape, gateway_with, scrape

pytestmark = pytest.mark.anyio

REQUESTS = "gateway_graphql_requests_total"
DURATION = "gateway_graphql_request_duration_seconds_count"
RATE_LIMITED = "gateway_rate_limit_refusals_total"
MISSING = "RE" + "0" * 32


def moved(before: Scrape, after: Scrape, operation: str, outcome: str) -> float:
    return after.value(REQUESTS, operation=operation, outcome=outcome) - before.value(
        REQUESTS, operation=operation, outcome=outcome
    )


#: Hex digits to letters that are not: a run of 16 hex digits is never a label (it looks like
#: an id or a credential).
_NOT_HEX = str.maketrans("0123456789abcdef", "ghijklmnopqrstuv")


def unique(prefix: str) -> str:
    """An operation name no other test (or run of this one) sends."""
    return f"{prefix}_{uuid.uuid4().hex.translate(_NOT_HEX)}"


async def post(client: httpx.AsyncClient, body: Any) -> httpx.Response:
    return await client.post("/graphql", json=body)


async def test_each_outcome_is_counted_once_by_operation_and_timed(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["twilio"]
    ok, partial, error, refused = (unique(name) for name in ("Ok", "Part", "Err", "Refused"))
    before = await scrape(gateway)
    answer = await post(gateway, {"query": f"query {ok} {{ __typename }}", "operationName": ok})
    assert answer.json() == {"data": {"__typename": "Query"}}
    both = (
        f'query {partial} {{ a: recording(provider: TWILIO, id: "{rid}") {{ id }} '
        f'b: recording(provider: TWILIO, id: "{MISSING}") {{ id }} }}'
    )
    answer = await post(gateway, {"query": both, "operationName": partial})
    assert answer.json()["data"]["a"] == {"id": rid} and answer.json()["errors"]
    answer = await post(gateway, {"query": f"query {error} {{ nope }}", "operationName": error})
    assert answer.json()["data"] is None and answer.json()["errors"]
    answer = await post(gateway, {"operationName": refused})  # no query: the gate refuses
    assert answer.status_code == 400
    after = await scrape(gateway)
    for operation, outcome in ((ok, "ok"), (partial, "partial"), (error, "error")):
        assert moved(before, after, operation, outcome) == 1, (operation, outcome)
        assert after.value(DURATION, operation=operation) == 1
    assert moved(before, after, refused, "refused") == 1
    assert after.value(REQUESTS, operation=ok, outcome="error") == 0


async def test_refusals_before_graphql_are_refused_and_anonymous(
    gateway: httpx.AsyncClient,
) -> None:
    before = await scrape(gateway)
    not_json = await gateway.post(
        "/graphql", content=b"{", headers={"content-type": "application/json"}
    )
    wrong_method = await gateway.put("/graphql", json={"query": "{ __typename }"})
    mutation_over_get = await gateway.get("/graphql", params={"query": "mutation { __typename }"})
    unknown_operation = await gateway.post(
        "/graphql", json={"query": "query A { __typename }", "operationName": "B"}
    )
    ide = await gateway.get("/graphql", headers={"accept": "text/html"})  # not a request
    after = await scrape(gateway)
    assert (not_json.status_code, wrong_method.status_code) == (400, 405)
    assert mutation_over_get.status_code in (400, 405)
    assert unknown_operation.status_code == 400
    assert ide.status_code == 200
    assert moved(before, after, ANONYMOUS, "refused") == 3
    assert moved(before, after, "B", "refused") == 1


async def test_a_rate_limit_refusal_is_counted_for_its_tenant(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    refs = ", ".join(f'{{provider: TWILIO, id: "RE{n:032x}"}}' for n in range(5))
    spend = {"query": f"query Spend {{ recordingsByRef(refs: [{refs}]) {{ id }} }}"}
    async with gateway_with(sandbox_config, sandbox_app, GATEWAY_RATE_LIMIT="5/minute") as client:
        before = await scrape(client)
        assert (await post(client, spend)).status_code == 200
        assert (await post(client, spend)).status_code == 429
        after = await scrape(client)
    limited = after.value(RATE_LIMITED, tenant="default") - before.value(
        RATE_LIMITED, tenant="default"
    )
    assert limited == 1
    assert moved(before, after, ANONYMOUS, "refused") == 1  # operationName not given
    assert moved(before, after, ANONYMOUS, "partial") == 1  # the first: every ref NOT_FOUND


async def test_an_unbounded_stream_of_operation_names_is_capped(
    gateway: httpx.AsyncClient,
) -> None:
    prefix = unique("Many")
    extra = 15
    before = await scrape(gateway)
    for index in range(MAX_OPERATIONS + extra):
        name = f"{prefix}_{index}"
        response = await post(
            gateway, {"query": f"query {name} {{ __typename }}", "operationName": name}
        )
        assert response.status_code == 200
    invalid = ["x" * 65, "1abc", "a-b", "a b", "é"]
    for name in invalid:  # not GraphQL names: Strawberry refuses them, labelled anonymous
        await post(gateway, {"query": "{ __typename }", "operationName": name})
    after = await scrape(gateway)
    labels = after.label_values(REQUESTS, "operation")
    assert len({label for label in labels if label.startswith(prefix)}) == MAX_OPERATIONS
    assert moved(before, after, OTHER, "ok") == extra
    assert moved(before, after, ANONYMOUS, "refused") == len(invalid)
    assert not set(invalid) & labels


def test_operation_labels() -> None:
    label = OperationLabels(limit=2)
    assert label(None) == ANONYMOUS
    assert label(7) == ANONYMOUS
    assert label("") == ANONYMOUS
    assert label("x" * 65) == ANONYMOUS
    assert label("_" + "x" * 63) == "_" + "x" * 63
    assert label("Two") == "Two"
    assert label("Three") == OTHER
    assert label("Two") == "Two", "a name seen before the cap keeps its label"
    assert label("Three") == OTHER
    for bad in ("1abc", "a-b", "query A", "A\n", "Ä", "a.b", "RE" + "0" * 32 + "-"):
        assert label(bad) == ANONYMOUS, bad


def test_operation_names_that_look_like_ids_or_keys_are_anonymous() -> None:
    label = OperationLabels()
    twilio_sid = "RE04a3d4b79350a180c170af92def4cbd2"
    for name in (
        twilio_sid,
        f"Get_{twilio_sid}",
        "rgk_abcDEFghiJKLmnoPQRstuVWXyz0123456789ABCDEFG",
    ):
        assert label(name) == ANONYMOUS, name
    assert label("RecordingsOfDecember2024") == "RecordingsOfDecember2024"
