"""``deleteRecording`` through the whole gateway, over the sandbox of each provider: what it
answers, what it refuses before any upstream request, and what it leaves behind (the cache,
cached answers, an event, an audit line)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import key_hash
from app.events import RecordingEventType
from app.models import Provider, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.deletion.support import (
    ADMIN,
    DELETE,
    READER,
    TENANTS,
    WIRE,
    Stand,
    deletes,
    stand,
)
from tests.support import secrets_of, upstream_count

pytestmark = pytest.mark.anyio

PROVIDERS = list(Provider)
BAD_IDS = {
    Provider.TWILIO: "RE123",
    Provider.SIGNALWIRE: "not-a-uuid",
    Provider.BIRD: "RE" + "a" * 32,
}


@pytest.fixture
def settings(tmp_path: Path, sandbox_config: SandboxConfig) -> Settings:
    return Settings.from_env(write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS))


@pytest.fixture
async def gateway(settings: Settings, sandbox_app: Starlette) -> AsyncIterator[Stand]:
    async with stand(settings, sandbox_app) as gateway:
        yield gateway


def sample(sandbox: Sandbox, provider: Provider) -> str:
    return sandbox.sample_ids()[WIRE[provider]]


def result(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert "errors" not in body, body
    answer: dict[str, object] = body["data"]["deleteRecording"]
    return answer


def codes(response: httpx.Response) -> list[str]:
    return [error["extensions"]["code"] for error in response.json()["errors"]]


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.value)
async def test_a_recording_is_deleted_then_reported_already_deleted(
    gateway: Stand, sandbox: Sandbox, provider: Provider
) -> None:
    rid = sample(sandbox, provider)
    first = await gateway.delete(provider, rid)
    assert first.status_code == 200
    assert result(first) == {
        "provider": provider.name,
        "id": rid,
        "deleted": True,
        "alreadyDeleted": False,
    }
    [sent] = deletes(sandbox)
    assert sent.route_path.endswith(f"/{rid}.json" if provider is not Provider.BIRD else rid)
    second = await gateway.delete(provider, rid)
    assert result(second) == {
        "provider": provider.name,
        "id": rid,
        "deleted": False,
        "alreadyDeleted": True,
    }
    assert len(deletes(sandbox)) == 2  # idempotent, but asked: the provider is the judge
    kept = sandbox.dataset.get(WIRE[provider], rid)
    if provider is Provider.TWILIO:  # soft-deleted: kept 40 days with status "deleted"
        assert kept is not None and kept.status == "deleted"
    else:
        assert kept is None


async def test_without_the_scope_it_is_forbidden_before_anything_else(
    gateway: Stand, sandbox: Sandbox
) -> None:
    rid = sample(sandbox, Provider.TWILIO)
    refused = await gateway.delete(Provider.TWILIO, rid, key=READER)
    assert refused.json()["data"] is None
    assert codes(refused) == ["FORBIDDEN"]
    assert "recordings:delete" in refused.json()["errors"][0]["message"]
    # The scope comes first: a malformed id tells a caller without it nothing more.
    malformed = await gateway.delete(Provider.TWILIO, "RE123", key=READER)
    assert codes(malformed) == ["FORBIDDEN"]
    assert sandbox.requests == []
    assert sandbox.dataset.get("twilio", rid) is not None


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.value)
async def test_a_malformed_id_is_bad_user_input_with_no_upstream_request(
    gateway: Stand, sandbox: Sandbox, provider: Provider
) -> None:
    response = await gateway.delete(provider, BAD_IDS[provider])
    assert response.json()["data"] is None
    assert codes(response) == ["BAD_USER_INPUT"]
    assert sandbox.requests == []


async def test_a_provider_the_tenant_lacks_is_not_configured(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    only_bird = {"admin": TenantSpec(ADMIN, accounts={"bird": 0}, scopes=["recordings:delete"])}
    env = write_config(tmp_path / "bird.toml", sandbox_config, only_bird)
    async with stand(Settings.from_env(env), sandbox_app) as gateway:
        response = await gateway.delete(Provider.TWILIO, sample(sandbox, Provider.TWILIO))
    assert codes(response) == ["PROVIDER_NOT_CONFIGURED"]
    assert sandbox.requests == []


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p.value)
async def test_the_cached_recording_and_every_answer_holding_it_are_gone(
    gateway: Stand, sandbox: Sandbox, provider: Provider
) -> None:
    rid = sample(sandbox, provider)
    miss = await gateway.read(provider, rid)
    hit = await gateway.read(provider, rid)
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert hit.json()["data"]["recording"]["status"] == "COMPLETED"
    assert result(await gateway.delete(provider, rid))["deleted"] is True
    asked = upstream_count(sandbox, rid)
    after = await gateway.read(provider, rid)
    assert after.headers["x-cache"] == "MISS"  # the kept answer was purged
    body = after.json()
    assert body["data"] == {"recording": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["NOT_FOUND"]
    # The deletion left NOT_FOUND in the recording cache: no need to ask the provider.
    assert upstream_count(sandbox, rid) == asked


async def test_a_deletion_publishes_deleted_to_the_tenants_subscribers(
    gateway: Stand, sandbox: Sandbox
) -> None:
    rid = sample(sandbox, Provider.SIGNALWIRE)
    await gateway.read(Provider.SIGNALWIRE, rid)  # cached: the event carries what was known
    bus = await gateway.events()
    mine, theirs = bus.subscribe("admin"), bus.subscribe("reader")
    try:
        assert result(await gateway.delete(Provider.SIGNALWIRE, rid))["deleted"] is True
        delivery = await asyncio.wait_for(aiter(mine).__anext__(), 5)
        event = delivery.event
        assert (event.tenant, event.type) == ("admin", RecordingEventType.DELETED)
        assert (event.recording.provider, event.recording.id) == (Provider.SIGNALWIRE, rid)
        assert event.recording.status is RecordingStatus.DELETED
        assert event.recording.created_at is not None  # what the cache knew of it, kept
        # Deleting it again changes nothing: no second event.
        assert result(await gateway.delete(Provider.SIGNALWIRE, rid))["alreadyDeleted"] is True
    finally:
        bus.unsubscribe(mine)
        bus.unsubscribe(theirs)
    assert [d async for d in mine] == []
    assert [d async for d in theirs] == []  # another tenant hears nothing


async def test_a_recording_gone_behind_the_gateways_back_is_announced_once_found_gone(
    gateway: Stand, sandbox: Sandbox
) -> None:
    """Deleted in the provider's console: the gateway still held it as present, so its
    subscribers hear DELETED from the call that finds it gone; but nobody hears it twice."""
    rid = sample(sandbox, Provider.BIRD)
    await gateway.read(Provider.BIRD, rid)
    sandbox.dataset.delete("bird", rid)
    bus = await gateway.events()
    subscription = bus.subscribe("admin")
    try:
        assert result(await gateway.delete(Provider.BIRD, rid))["alreadyDeleted"] is True
        delivery = await asyncio.wait_for(aiter(subscription).__anext__(), 5)
        assert delivery.event.type is RecordingEventType.DELETED
        assert result(await gateway.delete(Provider.BIRD, rid))["alreadyDeleted"] is True
    finally:
        bus.unsubscribe(subscription)
    assert [d async for d in subscription] == []


async def test_an_uncached_recording_is_announced_with_its_provider_and_id(
    gateway: Stand, sandbox: Sandbox
) -> None:
    rid = sample(sandbox, Provider.BIRD)
    bus = await gateway.events()
    subscription = bus.subscribe("admin")
    try:
        await gateway.delete(Provider.BIRD, rid)
        delivery = await asyncio.wait_for(aiter(subscription).__anext__(), 5)
    finally:
        bus.unsubscribe(subscription)
    recording = delivery.event.recording
    assert (recording.provider, recording.id, recording.status) == (
        Provider.BIRD,
        rid,
        RecordingStatus.DELETED,
    )
    assert recording.account_id == sandbox.account("bird")


async def test_each_attempt_writes_one_audit_line_without_credentials(
    gateway: Stand,
    sandbox: Sandbox,
    sandbox_config: SandboxConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rid = sample(sandbox, Provider.TWILIO)
    caplog.set_level(logging.INFO, logger="app.audit")
    await gateway.delete(Provider.TWILIO, rid, headers={"x-request-id": "req-1"})
    await gateway.delete(Provider.TWILIO, rid, headers={"x-request-id": "req-2"})
    await gateway.delete(Provider.TWILIO, rid, key=READER, headers={"x-request-id": "req-3"})
    await gateway.delete(Provider.TWILIO, "RE1\n", headers={"x-request-id": "req-4"})
    lines = [r for r in caplog.records if r.name == "app.audit"]
    assert all(r.levelno == logging.INFO for r in lines)
    admin, reader = f"key:{key_hash(ADMIN)[:12]}", f"key:{key_hash(READER)[:12]}"
    assert [r.getMessage() for r in lines] == [
        f"deleteRecording tenant=admin caller={admin} provider=TWILIO id={rid} "
        "request=req-1 outcome=deleted",
        f"deleteRecording tenant=admin caller={admin} provider=TWILIO id={rid} "
        "request=req-2 outcome=already_deleted",
        f"deleteRecording tenant=reader caller={reader} provider=TWILIO id={rid} "
        "request=req-3 outcome=forbidden",
        f'deleteRecording tenant=admin caller={admin} provider=TWILIO id="RE1\\n" '
        "request=req-4 outcome=failed error=BAD_USER_INPUT",
    ]
    assert lines[0].audit == {  # type: ignore[attr-defined]
        "action": "deleteRecording",
        "tenant": "admin",
        "caller": admin,
        "provider": "TWILIO",
        "id": rid,
        "request": "req-1",
        "outcome": "deleted",
    }
    text = caplog.text
    for secret in [ADMIN, READER, *secrets_of(sandbox_config)]:
        assert secret not in text


async def test_a_jwt_caller_is_named_by_its_subject(
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    signer = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "idp.pem"
    pem.write_bytes(
        signer.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    section = (
        f'[auth.jwt]\nissuer = "https://id.test/"\naudience = "gw"\npublic_key_file = "{pem}"\n'
    )
    env = write_config(tmp_path / "jwt.toml", sandbox_config, TENANTS, jwt=section)
    claims = {
        "iss": "https://id.test/",
        "aud": "gw",
        "exp": 4102444800,
        "tenant": "admin",
        "sub": "ops@example.com",
    }
    token = jwt.encode(claims, signer, algorithm="ES256")
    caplog.set_level(logging.INFO, logger="app.audit")
    async with stand(Settings.from_env(env), sandbox_app) as gateway:
        response = await gateway.delete(Provider.BIRD, sample(sandbox, Provider.BIRD), key=token)
    assert result(response)["deleted"] is True
    [line] = [r.getMessage() for r in caplog.records if r.name == "app.audit"]
    assert " caller=jwt:ops@example.com " in line
    assert token not in caplog.text


async def test_a_mutation_over_get_is_refused_in_the_typed_shape(
    gateway: Stand, sandbox: Sandbox
) -> None:
    rid = sample(sandbox, Provider.TWILIO)
    variables = f'{{"provider": "TWILIO", "id": "{rid}"}}'
    response = await gateway.client.get(
        "/graphql", params={"query": DELETE, "variables": variables}, headers=bearer(ADMIN)
    )
    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "message": "mutations are not allowed when using GET",
                "extensions": {"code": "BAD_REQUEST"},
            }
        ]
    }
    assert sandbox.requests == []
    assert sandbox.dataset.get("twilio", rid).status == "completed"  # type: ignore[union-attr]


async def test_a_mutation_is_never_answered_from_the_response_cache(
    gateway: Stand, sandbox: Sandbox
) -> None:
    rid = sample(sandbox, Provider.BIRD)
    first = await gateway.delete(Provider.BIRD, rid)
    second = await gateway.delete(Provider.BIRD, rid)
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("MISS", "MISS")
    assert result(first)["deleted"] is True and result(second)["alreadyDeleted"] is True
    assert len(deletes(sandbox)) == 2
    assert first.headers["cache-control"] == "no-store"


async def test_each_deletion_costs_one_and_counts_against_the_rate_limit(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    limited = {"admin": TenantSpec(ADMIN, scopes=["recordings:delete"], rate_limit="2/minute")}
    env = write_config(tmp_path / "limited.toml", sandbox_config, limited)
    twilio, bird = sample(sandbox, Provider.TWILIO), sample(sandbox, Provider.BIRD)
    both = (
        f'mutation {{ a: deleteRecording(provider: TWILIO, id: "{twilio}") {{ deleted }} '
        f'b: deleteRecording(provider: BIRD, id: "{bird}") {{ deleted }} }}'
    )
    async with stand(Settings.from_env(env), sandbox_app) as gateway:
        costed = await gateway.client.post(
            "/graphql",
            json={"query": both},
            headers=bearer(ADMIN) | {"x-gateway-cost": "1"},
        )
        assert costed.json() == {
            "data": {"a": {"deleted": True}, "b": {"deleted": True}},
            "extensions": {"cost": 2},
        }
        assert len(deletes(sandbox)) == 2
        refused = await gateway.delete(Provider.SIGNALWIRE, sample(sandbox, Provider.SIGNALWIRE))
    assert refused.status_code == 429
    assert codes(refused) == ["RATE_LIMITED"]
    assert len(deletes(sandbox)) == 2


async def test_a_retry_after_the_provider_acted_is_a_deletion_not_an_error(
    gateway: Stand, sandbox: Sandbox
) -> None:
    """The first DELETE deletes, but a proxy in front answers 504; the retry meets 404."""
    rid = sample(sandbox, Provider.TWILIO)
    sandbox.faults.inject("twilio", 504, reached=True)
    response = await gateway.delete(Provider.TWILIO, rid)
    assert result(response) == {
        "provider": "TWILIO",
        "id": rid,
        "deleted": True,
        "alreadyDeleted": False,
    }
    assert len(deletes(sandbox)) == 2
    assert sandbox.dataset.get("twilio", rid).status == "deleted"  # type: ignore[union-attr]


async def test_a_retry_after_a_refusal_still_says_already_deleted(
    gateway: Stand, sandbox: Sandbox
) -> None:
    """A 429 did nothing: the 404 of its retry means the recording was gone before."""
    rid = sample(sandbox, Provider.BIRD)
    sandbox.dataset.delete("bird", rid)
    sandbox.faults.inject("bird", 429, retry_after=0)
    response = await gateway.delete(Provider.BIRD, rid)
    assert result(response)["alreadyDeleted"] is True
    assert len(deletes(sandbox)) == 2


async def test_a_failed_deletion_is_an_error_and_the_next_read_asks_the_provider(
    gateway: Stand, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    rid = sample(sandbox, Provider.SIGNALWIRE)
    assert (await gateway.read(Provider.SIGNALWIRE, rid)).json()["data"]["recording"]
    sandbox.faults.inject("signalwire", 500)  # not retried: the provider's own bug
    caplog.set_level(logging.INFO, logger="app.audit")
    response = await gateway.delete(Provider.SIGNALWIRE, rid)
    assert response.json()["data"] is None
    assert codes(response) == ["PROVIDER_UNAVAILABLE"]
    assert caplog.records[-1].getMessage().endswith("outcome=failed error=PROVIDER_UNAVAILABLE")
    # It may have been deleted: the cached copy is dropped, the provider asked again.
    asked = upstream_count(sandbox, rid)
    again = await gateway.read(Provider.SIGNALWIRE, rid)
    assert again.headers["x-cache"] == "MISS"
    assert again.json()["data"]["recording"]["id"] == rid
    assert upstream_count(sandbox, rid) == asked + 1
