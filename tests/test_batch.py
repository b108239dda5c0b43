"""recordingsByRef: order, de-duplication, per-index errors, and the batch limit."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import gateway_client, graphql, sandbox_env

pytestmark = pytest.mark.anyio

BATCH = """
query Batch($refs: [RecordingRefInput!]!) {
  recordingsByRef(refs: $refs) { provider id status }
}
"""


def refs_of(sandbox: Sandbox, per_provider: int) -> list[dict[str, str]]:
    refs = []
    for name in ("twilio", "signalwire", "bird"):
        for record in sandbox.dataset.listing(name)[:per_provider]:
            if record.status != "deleted":
                refs.append({"provider": name.upper(), "id": record.id})
    return refs


async def test_order_kept_and_duplicates_fetched_once(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    unique = refs_of(sandbox, 5)
    refs = unique + list(reversed(unique)) + unique[:3]
    body = await graphql(gateway, BATCH, {"refs": refs})
    assert "errors" not in body, body
    got = [(r["provider"], r["id"]) for r in body["data"]["recordingsByRef"]]
    assert got == [(ref["provider"], ref["id"]) for ref in refs]
    assert len(sandbox.requests) == len(unique)


async def test_a_failing_ref_is_null_at_its_index(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    good = refs_of(sandbox, 1)
    refs = [
        good[0],
        {"provider": "TWILIO", "id": "not-a-sid"},
        good[1],
        {"provider": "BIRD", "id": "00000000-0000-4000-8000-000000000000"},
        good[2],
    ]
    body = await graphql(gateway, BATCH, {"refs": refs})
    items = body["data"]["recordingsByRef"]
    assert [item is None for item in items] == [False, True, False, True, False]
    errors = {tuple(error["path"]): error["extensions"] for error in body["errors"]}
    assert errors == {
        ("recordingsByRef", 1): {"code": "BAD_USER_INPUT", "provider": "TWILIO"},
        ("recordingsByRef", 3): {"code": "NOT_FOUND", "provider": "BIRD"},
    }


async def test_an_unconfigured_provider_fails_only_its_refs(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    env = {k: v for k, v in sandbox_env(sandbox_config).items() if not k.startswith("BIRD")}
    refs = refs_of(sandbox, 1)
    async with gateway_client(Settings.from_env(env), httpx.ASGITransport(app=sandbox_app)) as c:
        body = await graphql(c, BATCH, {"refs": refs})
    assert [item is None for item in body["data"]["recordingsByRef"]] == [False, False, True]
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert body["errors"][0]["path"] == ["recordingsByRef", 2]


async def test_recording_and_batch_share_the_request_loader(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    ref = refs_of(sandbox, 1)[0]
    query = """
    query Both($refs: [RecordingRefInput!]!, $id: ID!) {
      one: recording(provider: TWILIO, id: $id) { id }
      many: recordingsByRef(refs: $refs) { id }
    }
    """
    body = await graphql(gateway, query, {"refs": [ref, ref], "id": ref["id"]})
    assert body["data"]["one"]["id"] == ref["id"]
    assert len(sandbox.requests) == 1


async def test_over_the_limit_is_bad_input_without_upstream_calls(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = Settings.from_env({**sandbox_env(sandbox_config), "GATEWAY_MAX_BATCH": "4"})
    refs = refs_of(sandbox, 2)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        body = await graphql(client, BATCH, {"refs": refs[:5]})
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert sandbox.requests == []
        body = await graphql(client, BATCH, {"refs": refs[:4]})
        assert len(body["data"]["recordingsByRef"]) == 4


async def test_default_limit_is_one_hundred(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    ref = refs_of(sandbox, 1)[0]
    body = await graphql(gateway, BATCH, {"refs": [ref] * 101})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    body = await graphql(gateway, BATCH, {"refs": [ref] * 100})
    assert len(body["data"]["recordingsByRef"]) == 100
    assert len(sandbox.requests) == 1
