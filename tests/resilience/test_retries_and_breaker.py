"""Retries, the retry budget and the breaker, seen from a client of the real gateway with the
sandbox as every provider (its fault injection answers the next requests to a provider)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox
from app.settings import Settings
from tests.support import gateway_client as client_of
from tests.support import graphql

pytestmark = pytest.mark.anyio

PROVIDERS = ("twilio", "signalwire", "bird")
QUERY = "query($id: ID!) { recording(provider: %s, id: $id) { id } }"


@pytest.fixture
async def gateway(sandbox_app: Starlette, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


async def ask(gateway: httpx.AsyncClient, sandbox: Sandbox, provider: str) -> dict[str, Any]:
    body = await graphql(gateway, QUERY % provider.upper(), {"id": sandbox.sample_ids()[provider]})
    return body


def asked(sandbox: Sandbox, provider: str) -> int:
    return len(sandbox.requests_to(provider))


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("status", [502, 503, 504, 429])
async def test_a_transient_failure_is_retried_and_answered(
    gateway: httpx.AsyncClient, sandbox: Sandbox, provider: str, status: int
) -> None:
    sandbox.faults.inject(provider, status, retry_after=0 if status == 429 else None)
    body = await ask(gateway, sandbox, provider)
    assert "errors" not in body, body
    assert body["data"] == {"recording": {"id": sandbox.sample_ids()[provider]}}
    assert asked(sandbox, provider) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_failure_on_every_attempt_is_given_after_three(
    gateway: httpx.AsyncClient, sandbox: Sandbox, provider: str
) -> None:
    sandbox.faults.inject(provider, 503, times=10)
    body = await ask(gateway, sandbox, provider)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    assert error["extensions"]["retryable"] is True
    assert asked(sandbox, provider) == 3


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_500_or_an_answer_is_never_retried(
    gateway: httpx.AsyncClient, sandbox: Sandbox, provider: str
) -> None:
    sandbox.faults.inject(provider, 500, times=10)
    body = await ask(gateway, sandbox, provider)
    assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
    sandbox.faults.clear()
    sandbox.faults.inject(provider, 404, times=10)
    await ask(gateway, sandbox, provider)
    assert asked(sandbox, provider) == 2


async def test_retry_after_is_waited_for_up_to_its_bound(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.inject("twilio", 429, retry_after=1)
    started = time.monotonic()
    body = await ask(gateway, sandbox, "twilio")
    assert "errors" not in body
    assert time.monotonic() - started >= 1.0, "Retry-After: 1 was waited for"
    assert asked(sandbox, "twilio") == 2


async def test_a_longer_retry_after_is_the_clients_to_wait_for(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    sandbox.faults.inject("bird", 429, retry_after=30, times=10)
    body = await ask(gateway, sandbox, "bird")
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == 30
    assert asked(sandbox, "bird") == 1


async def test_retries_stay_within_the_accounts_budget(
    sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    """40 calls, 30 of them failing with 503 on every attempt: at most a fifth of the calls
    plus three are retried, not the two retries each failing call would get alone."""
    settings = Settings.from_env({**_env_of(sandbox), "GATEWAY_CACHE_URL": "none://"})
    rid = sandbox.sample_ids()["twilio"]
    calls = 0
    async with client_of(settings, httpx.ASGITransport(app=sandbox_app)) as gateway:
        for round_ in range(10):
            sandbox.faults.inject("twilio", 503, times=1000)
            for _ in range(3):
                await graphql(gateway, QUERY % "TWILIO", {"id": rid})
                calls += 1
            sandbox.faults.clear()  # one success in four keeps the breaker shut
            body = await graphql(gateway, QUERY % "TWILIO", {"id": rid})
            calls += 1
            assert "errors" not in body, round_
    retries = asked(sandbox, "twilio") - calls
    assert 0.2 * calls <= retries <= 0.2 * calls + 3, (retries, calls)


async def test_the_breaker_opens_for_one_account_only(
    sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    settings = Settings.from_env(
        {
            **_env_of(sandbox),
            "GATEWAY_BREAKER_FAILURES": "5",
            "GATEWAY_BREAKER_COOLDOWN": "60",
            "GATEWAY_CACHE_URL": "none://",
        }
    )
    async with client_of(settings, httpx.ASGITransport(app=sandbox_app)) as gateway:
        sandbox.faults.inject("signalwire", 500, times=5)
        for _ in range(5):
            body = await ask(gateway, sandbox, "signalwire")
            assert body["errors"][0]["extensions"]["code"] == "PROVIDER_UNAVAILABLE"
        assert asked(sandbox, "signalwire") == 5
        started = time.monotonic()
        body = await ask(gateway, sandbox, "signalwire")
        assert time.monotonic() - started < 0.5
        (error,) = body["errors"]
        assert error["extensions"] == {
            "code": "PROVIDER_UNAVAILABLE",
            "provider": "SIGNALWIRE",
            "retryable": True,
        }
        assert "consecutive failures" in error["message"]
        assert asked(sandbox, "signalwire") == 5, "no request while the breaker is open"
        for other in ("twilio", "bird"):
            assert "errors" not in await ask(gateway, sandbox, other)


def _env_of(sandbox: Sandbox) -> dict[str, str]:
    from tests.support import sandbox_env

    return sandbox_env(sandbox.config)
