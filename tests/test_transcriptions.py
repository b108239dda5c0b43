"""Transcriptions through the gateway: read only when selected, batched, cached, asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse
from starlette.applications import Starlette

from app.access.keys import new_key
from app.providers.protocol import TRANSCRIPTION_CALLS
from app.sandbox import Sandbox, SandboxConfig
from app.schema.cost import estimate
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.support import gateway_client, graphql

pytestmark = pytest.mark.anyio

C = TRANSCRIPTION_CALLS

TRANSCRIBER, READER = new_key(), new_key()
TENANTS = {
    "transcriber": TenantSpec(
        TRANSCRIBER, scopes=["recordings:read", "media:read", "transcriptions:request"]
    ),
    "reader": TenantSpec(READER),
}

ONE = """query One($provider: Provider!, $id: ID!) {
  recording(provider: $provider, id: $id) {
    id transcriptions { id status providerStatus text locale createdAt }
  }
}"""
REQUEST = """mutation Ask($provider: Provider!, $id: ID!, $locale: String!) {
  requestTranscription(provider: $provider, id: $id, locale: $locale) {
    id status providerStatus text locale createdAt
  }
}"""


def transcribed(sandbox: Sandbox, provider: str, count: int = 1) -> list[str]:
    """``count`` recordings of ``provider`` that have seeded transcriptions."""
    found = [
        r.id
        for r in sandbox.dataset.listing(provider)
        if sandbox.transcriptions.of(provider, r.id, sandbox.now())
    ]
    assert len(found) >= count
    return found[:count]


def transcription_calls(sandbox: Sandbox) -> list[str]:
    """The paths of every transcription request the sandbox received."""
    return [s.route_path for s in sandbox.requests if "ranscriptions" in s.route_path]


@pytest.fixture
def tenant_settings(tmp_path: Path, sandbox_config: SandboxConfig) -> Settings:
    return Settings.from_env(write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS))


@pytest.fixture
async def client(
    tenant_settings: Settings, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tenant_settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


async def ask(
    client: httpx.AsyncClient, variables: dict[str, Any], key: str = TRANSCRIBER
) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": REQUEST, "variables": variables}, headers=bearer(key)
    )


async def test_no_upstream_call_unless_selected(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "twilio")
    query = "query($id: ID!) { recording(provider: TWILIO, id: $id) { id status } }"
    body = await graphql(gateway, query, {"id": rid})
    assert body["data"]["recording"]["id"] == rid
    assert transcription_calls(sandbox) == []


@pytest.mark.parametrize("provider", ["twilio", "signalwire", "bird"])
async def test_transcriptions_of_a_recording(
    provider: str, gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, provider)
    body = await graphql(gateway, ONE, {"provider": provider.upper(), "id": rid})
    assert "errors" not in body, body
    kept = sandbox.transcriptions.of(provider, rid, sandbox.now())
    got = body["data"]["recording"]["transcriptions"]
    assert [t["id"] for t in got] == [t.id for t in kept]
    assert [t["providerStatus"] for t in got] == [t.status for t in kept]
    assert {t["status"] for t in got} <= {"COMPLETED", "FAILED", "IN_PROGRESS"}
    assert all((t["text"] is not None) == (t["status"] == "COMPLETED") for t in got)


async def test_one_batch_for_many_recordings(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    twilio = transcribed(sandbox, "twilio", 2)
    bird = transcribed(sandbox, "bird", 1)
    refs = [{"provider": "TWILIO", "id": rid} for rid in twilio]
    refs += [{"provider": "BIRD", "id": bird[0]}, {"provider": "TWILIO", "id": twilio[0]}]
    query = """query($refs: [RecordingRefInput!]!, $id: ID!) {
      recordingsByRef(refs: $refs) { id transcriptions { id } }
      again: recording(provider: TWILIO, id: $id) { transcriptions { id } }
    }"""
    body = await graphql(gateway, query, {"refs": refs, "id": twilio[0]})
    assert "errors" not in body, body
    listed = [p for p in transcription_calls(sandbox) if not p.endswith(".txt")]
    twilio_base = f"/2010-04-01/Accounts/{sandbox.account('twilio')}/Recordings"
    expected = [f"{twilio_base}/{rid}/Transcriptions.json" for rid in twilio]
    expected.append(f"/workspaces/{sandbox.account('bird')}/recordings/{bird[0]}/transcriptions")
    assert sorted(listed) == sorted(expected), "each list asked for once, duplicates included"
    items = body["data"]["recordingsByRef"]
    assert items[0]["transcriptions"] == items[3]["transcriptions"]
    assert body["data"]["again"]["transcriptions"] == items[0]["transcriptions"]


async def test_a_second_query_is_answered_from_the_cache(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "signalwire")
    first = await graphql(gateway, ONE, {"provider": "SIGNALWIRE", "id": rid})
    calls = len(sandbox.requests)
    other = (
        "query($id: ID!) { recording(provider: SIGNALWIRE, id: $id) { transcriptions { text } } }"
    )

    second = await graphql(gateway, other, {"id": rid})
    assert len(sandbox.requests) == calls, "no upstream call: recording and transcriptions cached"
    texts = [t["text"] for t in first["data"]["recording"]["transcriptions"]]
    assert [t["text"] for t in second["data"]["recording"]["transcriptions"]] == texts


async def test_a_provider_failure_keeps_the_recording(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "twilio")
    plain = "query($id: ID!) { recording(provider: TWILIO, id: $id) { id } }"
    await graphql(gateway, plain, {"id": rid})
    sandbox.faults.inject("twilio", 401)
    body = await graphql(gateway, ONE, {"provider": "TWILIO", "id": rid})
    assert body["data"]["recording"] == {"id": rid, "transcriptions": []}
    (error,) = body["errors"]
    assert error["path"] == ["recording", "transcriptions"]
    assert error["extensions"]["code"] == "PROVIDER_AUTH_FAILED"


async def test_the_cost_counts_the_calls_a_selection_may_make(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "twilio")
    response = await gateway.post(
        "/graphql",
        json={"query": ONE, "variables": {"provider": "TWILIO", "id": rid}},
        headers={"x-gateway-cost": "1"},
    )
    assert response.json()["extensions"]["cost"] == 1 + TRANSCRIPTION_CALLS


async def test_bird_transcribes_on_request_and_the_cached_list_is_dropped(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "bird")
    variables = {"provider": "BIRD", "id": rid}
    request = {"query": ONE, "variables": variables}
    before = await client.post("/graphql", json=request, headers=bearer(TRANSCRIBER))
    again = await client.post("/graphql", json=request, headers=bearer(TRANSCRIBER))
    assert again.headers["x-cache"] == "HIT" and again.json() == before.json()
    listed = len(transcription_calls(sandbox))

    answer = await ask(client, {**variables, "locale": "fr-FR"})
    body = answer.json()
    assert "errors" not in body, body
    created = body["data"]["requestTranscription"]
    assert created["status"] == "QUEUED" and created["providerStatus"] == "accepted"
    assert created["locale"] == "fr-FR" and created["text"] is None
    assert answer.headers["cache-control"] == "no-store"
    posts = [s for s in sandbox.requests_to("bird") if s.method == "POST"]
    assert len(posts) == 1

    after = await client.post("/graphql", json=request, headers=bearer(TRANSCRIBER))
    assert after.headers["x-cache"] == "MISS", "the answer holding the old list was purged"
    assert len(transcription_calls(sandbox)) > listed + 1, "asked the provider again"
    mine = [
        t for t in after.json()["data"]["recording"]["transcriptions"] if t["id"] == created["id"]
    ]
    assert mine == [created]


@pytest.mark.parametrize("provider", ["TWILIO", "SIGNALWIRE"])
async def test_the_others_cannot(
    provider: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, provider.lower())
    request = {"query": ONE, "variables": {"provider": provider, "id": rid}}
    await client.post("/graphql", json=request, headers=bearer(TRANSCRIBER))
    sandbox.requests.clear()
    body = (await ask(client, {"provider": provider, "id": rid, "locale": "en-US"})).json()
    assert body["data"] == {"requestTranscription": None}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "UNSUPPORTED_BY_PROVIDER", "provider": provider}
    assert sandbox.requests == []
    cached = await client.post("/graphql", json=request, headers=bearer(TRANSCRIBER))
    assert cached.headers["x-cache"] == "HIT", "nothing changed: nothing purged"


@pytest.mark.parametrize(
    "locale", ["", "english", "en_US", "en-US; DROP", "x" * 3 + "-" + "y" * 40]
)
async def test_a_bad_locale_is_refused_before_any_call(
    locale: str, client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "bird")
    body = (await ask(client, {"provider": "BIRD", "id": rid, "locale": locale})).json()
    assert body["data"] == {"requestTranscription": None}
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert sandbox.requests == []


async def test_a_bad_id_is_refused_before_any_call(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    body = (await ask(client, {"provider": "BIRD", "id": "nope", "locale": "en-US"})).json()
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert sandbox.requests == []


async def test_without_the_scope_it_is_forbidden(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "bird")
    body = (await ask(client, {"provider": "BIRD", "id": rid, "locale": "en-US"}, READER)).json()
    assert body["data"] == {"requestTranscription": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "transcriptions:request" in body["errors"][0]["message"]
    assert sandbox.requests == []


async def test_a_mutation_over_get_is_refused(client: httpx.AsyncClient, sandbox: Sandbox) -> None:
    """Strawberry refuses it (HTTP 400, its own words), in the gate's error shape; twice, so
    a refusal is not kept by the response cache either."""
    (rid,) = transcribed(sandbox, "bird")
    query = f'mutation {{ requestTranscription(provider: BIRD, id: "{rid}") {{ id }} }}'
    for _ in range(2):
        response = await client.get(
            "/graphql", params={"query": query}, headers=bearer(TRANSCRIBER)
        )
        assert response.status_code == 400
        assert response.headers["cache-control"] == "no-store"
        assert response.headers.get("x-cache") != "HIT"
        (error,) = response.json()["errors"]
        assert error == {
            "message": "mutations are not allowed when using GET",
            "extensions": {"code": "BAD_REQUEST"},
        }
    assert sandbox.requests == []


async def test_the_response_cache_never_keeps_a_mutation(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    (rid,) = transcribed(sandbox, "bird")
    variables = {"provider": "BIRD", "id": rid, "locale": "en-US"}
    first, second = await ask(client, variables), await ask(client, variables)
    assert first.headers.get("x-cache") != "HIT" and second.headers.get("x-cache") != "HIT"
    ids = {r.json()["data"]["requestTranscription"]["id"] for r in (first, second)}
    assert len(ids) == 2, "both ran"
    assert [s.method for s in sandbox.requests_to("bird")] == ["POST", "POST"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('{ recording(provider: TWILIO, id: "1") { transcriptions { id text } } }', 1 + C),
        (
            '{ recording(provider: TWILIO, id: "1") '
            "{ a: transcriptions { id } b: transcriptions { id } } }",
            1 + 2 * C,
        ),
        (
            '{ recordingsByRef(refs: [{provider: TWILIO, id: "1"}, {provider: BIRD, id: "2"}]) '
            "{ transcriptions { id } } }",
            2 + 2 * C,
        ),
        ("{ recordings(first: 10) { nodes { transcriptions { id } } } }", 30 + 10 * C),
        (
            "{ recordings(first: 5) { edges { node { ...T } } } } "
            "fragment T on Recording { transcriptions { id } }",
            15 + 5 * C,
        ),
        ('{ recording(provider: BIRD, id: "1") { transcriptions @skip(if: true) { id } } }', 1),
        ('mutation { requestTranscription(provider: BIRD, id: "1") { id } }', 1),
    ],
)
def test_the_estimate_counts_each_transcriptions_selection(query: str, expected: int) -> None:
    assert estimate(parse(query), None, None, providers=3) == expected
