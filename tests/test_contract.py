"""The contract every provider meets, run against each through the sandbox.

The cases come from the provider registry (``app.providers.REGISTRY``) and the sandbox alone:
a provider added there is held to this contract without a line added here.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.demo import demo_settings
from app.models import Provider
from app.providers import REGISTRY, ProviderEntry, RecordingProvider, configured
from app.sandbox import Sandbox, SandboxConfig, build_dataset
from app.settings import Settings
from tests.support import (
    RECORDING_QUERY,
    SANDBOX_URL,
    gateway_client,
    graphql,
    sandbox_env,
    secrets_of,
)

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Case:
    provider: Provider
    entry: ProviderEntry[Any]

    @property
    def key(self) -> str:
        return self.provider.value


CASES = [Case(provider, entry) for provider, entry in REGISTRY.items()]

#: Ids a client could mistake for a recording id of one provider, tried on top of the
#: generic ones of ``malformed_ids`` (a provider needs no entry here).
NEAR_MISSES = {
    Provider.TWILIO: ("RE123", "CA" + "a" * 32, "RE" + "g" * 32),
    Provider.SIGNALWIRE: ("RE" + "a" * 32, "not-a-uuid", "19e436af-5688-4307-b03b-bdb2b42b814"),
    Provider.BIRD: ("5b74ee9e9d45473a82cdf1f7feea6bbd",),
}


def malformed_ids(provider: Provider, rid: str) -> list[str]:
    """Ids that cannot be ``provider``'s, from its well-formed ``rid``: cut, lengthened,
    with a character no id format has, with a path or a query, or a trailing newline."""
    candidates = [
        "",
        "123",
        "../../Accounts",
        "x/../y",
        "?limit=5",
        rid[:-1],
        rid + "0",
        rid[:-1] + "g",
        rid + "\n",
        " " + rid,
        rid + "/",
        "../" + rid,
        rid.replace("-", ""),
        *NEAR_MISSES.get(provider, ()),
    ]
    return [candidate for candidate in dict.fromkeys(candidates) if candidate != rid]


def unknown_id(case: Case, sandbox: Sandbox) -> str:
    """A well-formed id the sandbox does not hold: the same dialect's, under another seed."""
    other = build_dataset(replace(sandbox.config, seed=sandbox.config.seed + 1))
    rid = other.listing(case.key)[0].id
    assert sandbox.dataset.get(case.key, rid) is None
    return rid


@pytest.fixture(params=CASES, ids=lambda case: case.key)
def case(request: pytest.FixtureRequest) -> Case:
    value: Case = request.param
    return value


async def query_one(client: httpx.AsyncClient, provider: Provider, rid: str) -> dict[str, Any]:
    return await graphql(client, RECORDING_QUERY, {"provider": provider.name, "id": rid})


def test_every_provider_has_one_registry_entry() -> None:
    assert set(REGISTRY) == set(Provider)
    for provider, entry in REGISTRY.items():
        assert entry.adapter.provider is provider
        assert issubclass(entry.adapter, RecordingProvider)
        assert not inspect.isabstract(entry.adapter), entry.adapter.__abstractmethods__


async def test_each_sandbox_environment_configures_its_provider_alone(
    case: Case, sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    env = case.entry.sandbox(sandbox_config, SANDBOX_URL)
    settings = Settings.from_env(env | {"GATEWAY_SIGNING_KEYS": "k" * 16})
    assert configured(settings) == [case.provider]
    assert case.entry.settings(settings) is not None
    assert case.entry.settings(Settings()) is None, "a provider is off until configured"
    sandbox: Sandbox = sandbox_app.state.sandbox
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for provider in REGISTRY:
            body = await query_one(client, provider, sandbox.sample_ids()[provider.value])
            if provider is case.provider:
                assert "errors" not in body, body
            else:
                assert body["errors"][0]["extensions"]["code"] == "PROVIDER_NOT_CONFIGURED"


async def test_the_demo_points_every_provider_at_the_sandbox(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = demo_settings(Settings.from_env({}), SANDBOX_URL, sandbox_config)
    assert settings.signing_keys, "a throwaway key"
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        for provider in REGISTRY:
            rid = sandbox.sample_ids()[provider.value]
            body = await query_one(client, provider, rid)
            assert body["data"]["recording"]["id"] == rid, body


async def test_reads_a_completed_recording(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()[case.key]
    body = await query_one(gateway, case.provider, rid)
    assert "errors" not in body, body
    recording = body["data"]["recording"]
    assert recording["provider"] == case.provider.name
    assert recording["id"] == rid
    assert recording["status"] == "COMPLETED"
    assert recording["channels"] in (1, 2)
    assert isinstance(recording["durationSeconds"], int)
    assert recording["durationSeconds"] >= 0
    assert "MP3" in recording["mediaFormats"]
    assert recording["raw"], "raw carries the provider payload"
    for field in ("createdAt", "startedAt", "endedAt"):
        offset = datetime.fromisoformat(recording[field]).utcoffset()
        assert offset is not None and offset.total_seconds() == 0
    # Against the sandbox's own record, not recomputed as the adapter computes it (Twilio's
    # endedAt is start + duration in the adapter; the sandbox keeps the real end).
    record = sandbox.dataset.get(case.key, rid)
    assert record is not None
    assert datetime.fromisoformat(recording["startedAt"]) == record.started
    assert datetime.fromisoformat(recording["endedAt"]) == record.ended
    assert recording["durationSeconds"] == record.duration
    assert recording["accountId"] == sandbox.account(case.key)


async def test_every_sandbox_recording_normalises(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """All seeded recordings, across every status, read without an error."""
    ids = [r.id for r in sandbox.dataset.listing(case.key)]
    assert len(ids) >= 30
    statuses = set()
    for rid in ids:
        body = await query_one(gateway, case.provider, rid)
        errors = body.get("errors")
        if errors:  # soft-deleted Twilio recordings are NOT_FOUND without IncludeSoftDeleted
            assert errors[0]["extensions"]["code"] == "NOT_FOUND", errors
            continue
        statuses.add(body["data"]["recording"]["status"])
    assert {"COMPLETED", "IN_PROGRESS", "PAUSED"} <= statuses
    assert "UNKNOWN" not in statuses


async def test_not_found_is_null_with_code(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    body = await query_one(gateway, case.provider, unknown_id(case, sandbox))
    assert body["data"] == {"recording": None}
    error = body["errors"][0]
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["extensions"]["provider"] == case.provider.name
    assert error["path"] == ["recording"]


async def test_bad_ids_are_rejected_without_an_upstream_call(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for bad in malformed_ids(case.provider, sandbox.sample_ids()[case.key]):
        body = await query_one(gateway, case.provider, bad)
        assert body["data"] == {"recording": None}
        assert body["errors"][0]["extensions"] == {
            "code": "BAD_USER_INPUT",
            "provider": case.provider.name,
        }, bad
    assert sandbox.requests == []


async def test_unconfigured_provider(
    case: Case, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    own = case.entry.sandbox(sandbox_config, SANDBOX_URL)
    env = {k: v for k, v in sandbox_env(sandbox_config).items() if k not in own}
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        body = await query_one(client, case.provider, sandbox.sample_ids()[case.key])
        bad = await query_one(client, case.provider, "../" + sandbox.sample_ids()[case.key])
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert body["errors"][0]["extensions"]["provider"] == case.provider.name
    # The id is checked first: a bad one is the client's error, configured provider or not.
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert sandbox.requests == []


async def test_rejected_credentials_never_leak(
    case: Case, sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    wrong = "wrong-secret-" + "9" * 24
    secrets = secrets_of(sandbox_config)
    own = case.entry.sandbox(sandbox_config, SANDBOX_URL)
    wrong_secrets = {name: wrong for name, value in own.items() if value in secrets}
    assert wrong_secrets, "the provider's sandbox environment holds a credential"
    env = sandbox_env(sandbox_config) | wrong_secrets
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": RECORDING_QUERY,
                "variables": {"provider": case.provider.name, "id": sandbox.sample_ids()[case.key]},
            },
        )
    body = response.json()
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_AUTH_FAILED"
    assert body["errors"][0]["extensions"]["provider"] == case.provider.name
    for secret in [wrong, *secrets_of(sandbox_config)]:
        assert secret not in response.text


@pytest.mark.parametrize(
    ("status", "code"),
    [(429, "PROVIDER_RATE_LIMITED"), (500, "PROVIDER_UNAVAILABLE"), (503, "PROVIDER_UNAVAILABLE")],
)
async def test_upstream_status_errors(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox, status: int, code: str
) -> None:
    # Every attempt fails (503 is retried; a 429 asking for 7 s is not: over the 2 s bound).
    sandbox.faults.inject(case.key, status, times=3, retry_after=7 if status == 429 else None)
    body = await query_one(gateway, case.provider, sandbox.sample_ids()[case.key])
    assert body["data"] == {"recording": None}
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == code
    assert extensions["provider"] == case.provider.name
    assert extensions["retryable"] is True
    if status == 429:
        assert extensions["retryAfter"] == 7


@pytest.mark.parametrize(
    "payload",
    [b"<html>Bad gateway</html>", b"[]", b'{"unexpected": true}', b'{"sid": 5, "id": 5}'],
    ids=["html", "array", "wrong-object", "wrong-types"],
)
async def test_malformed_responses(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox, payload: bytes
) -> None:
    sandbox.faults.inject(case.key, 200, body=payload, content_type="application/json")
    body = await query_one(gateway, case.provider, sandbox.sample_ids()[case.key])
    assert body["data"] == {"recording": None}
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert body["errors"][0]["extensions"]["provider"] == case.provider.name


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("eof")],
    ids=["connect", "timeout", "protocol"],
)
async def test_transport_failures(
    case: Case, settings: Settings, sandbox: Sandbox, exc: Exception
) -> None:
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    async with gateway_client(settings, httpx.MockTransport(fail)) as client:
        body = await query_one(client, case.provider, sandbox.sample_ids()[case.key])
    extensions = body["errors"][0]["extensions"]
    assert extensions["code"] == "PROVIDER_UNAVAILABLE"
    assert extensions["provider"] == case.provider.name


async def test_unexpected_errors_are_masked(
    case: Case, settings: Settings, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("internal detail: /etc/secret-path")

    async with gateway_client(settings, httpx.MockTransport(explode)) as client:
        response = await client.post(
            "/graphql",
            json={
                "query": RECORDING_QUERY,
                "variables": {"provider": case.provider.name, "id": sandbox.sample_ids()[case.key]},
            },
        )
    body = response.json()
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
    assert "secret-path" not in response.text
    assert "Traceback" not in response.text
    assert "secret-path" in caplog.text, "the operator still sees what went wrong"


async def test_secrets_absent_from_every_error(
    case: Case, gateway: httpx.AsyncClient, sandbox: Sandbox, sandbox_config: SandboxConfig
) -> None:
    bodies = []
    for status in (401, 403, 404, 429, 500):
        sandbox.faults.inject(case.key, status)
        bodies.append(await query_one(gateway, case.provider, sandbox.sample_ids()[case.key]))
    text = json.dumps(bodies)
    assert all(body["errors"][0]["extensions"]["code"] for body in bodies)
    for secret in secrets_of(sandbox_config):
        assert secret not in text


def test_settings_repr_hides_secrets(case: Case, settings: Settings) -> None:
    config = SandboxConfig()
    text = repr(settings) + str(dataclasses.asdict(settings))
    for secret in secrets_of(config):
        assert secret not in text
