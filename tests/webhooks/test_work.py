"""The work after the answer: it comes after the answer, shares its one upstream call with
readers, is bounded, fails in one log line (and can then be delivered again), and ends with
the gateway."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.events import RecordingEventType
from app.models import Provider
from app.sandbox import DEMO_TWILIO_AUTH_TOKEN, Sandbox, SandboxConfig
from app.settings import Settings
from tests.support import SANDBOX_URL, upstream_count
from tests.webhooks.support import GATEWAY, Delivery, Gateway, laml_signed, running, webhook_env

pytestmark = pytest.mark.anyio


class HeldTransport(httpx.AsyncBaseTransport):
    """The sandbox, behind a gate: requests wait until ``release`` is set; ``arrived`` is set
    when the first one does."""

    def __init__(self, app: Starlette) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.arrived.set()
        await self.release.wait()
        return await self._inner.handle_async_request(request)


@pytest.fixture
def held(sandbox_app: Starlette) -> HeldTransport:
    return HeldTransport(sandbox_app)


@pytest.fixture
async def gateway(sandbox_config: SandboxConfig, held: HeldTransport) -> AsyncIterator[Gateway]:
    settings = Settings.from_env(webhook_env(sandbox_config, SANDBOX_URL))
    async with running(settings, held) as gateway:
        yield gateway
        held.release.set()  # nothing left waiting at shutdown


def completed(sandbox: Sandbox, rid: str) -> Delivery:
    params = [
        ("AccountSid", sandbox.account("twilio")),
        ("RecordingSid", rid),
        ("RecordingStatus", "completed"),
    ]
    return laml_signed(f"{GATEWAY}/webhooks/twilio/default", params, DEMO_TWILIO_AUTH_TOKEN)


async def settle() -> None:
    """Let every ready task run on to its next real wait (no time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def test_the_answer_comes_before_the_work_and_readers_share_its_call(
    sandbox_config: SandboxConfig, sandbox: Sandbox, held: HeldTransport
) -> None:
    # No cache: a reader that did not join the refresh would ask the provider itself.
    env = webhook_env(sandbox_config, SANDBOX_URL) | {"GATEWAY_CACHE_URL": "none://"}
    rid = sandbox.sample_ids()["twilio"]
    async with running(Settings.from_env(env), held) as gateway:
        subscription = gateway.events.subscribe("default")
        response = await gateway.deliver(completed(sandbox, rid))
        assert response.json() == {"outcome": "accepted"}
        await held.arrived.wait()  # the refresh is at the provider, held there: answered
        service = gateway.state["tenants"]["default"].recordings
        reader = asyncio.ensure_future(service.get(Provider.TWILIO, rid))
        await settle()
        held.release.set()
        assert (await reader).id == rid
        await gateway.webhooks.idle()
        assert upstream_count(sandbox, rid) == 1  # the reader joined the refresh
        delivery = await anext(aiter(subscription))
    assert delivery.event.type is RecordingEventType.COMPLETED


async def test_past_the_pending_bound_the_provider_is_told_to_retry(
    gateway: Gateway, sandbox: Sandbox, held: HeldTransport
) -> None:
    gateway.webhooks.max_pending = 1
    ids = [r.id for r in sandbox.dataset.listing("twilio")[:2]]
    assert (await gateway.deliver(completed(sandbox, ids[0]))).status_code == 200
    busy = await gateway.deliver(completed(sandbox, ids[1]))
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "5"
    assert busy.json()["error"]["code"] == "WEBHOOKS_BUSY"
    held.release.set()
    await gateway.webhooks.idle()
    # Not claimed when refused: the provider's retry is worked on.
    assert (await gateway.deliver(completed(sandbox, ids[1]))).json() == {"outcome": "accepted"}


async def test_a_failed_refresh_is_one_warning_and_the_delivery_can_come_again(
    gateway: Gateway, sandbox: Sandbox, held: HeldTransport, caplog: pytest.LogCaptureFixture
) -> None:
    held.release.set()
    rid = sandbox.sample_ids()["twilio"]
    sandbox.faults.inject("twilio", 401)  # the account's credentials refused: not retried
    caplog.set_level(logging.WARNING)
    subscription = gateway.events.subscribe("default")
    assert (await gateway.deliver(completed(sandbox, rid))).json() == {"outcome": "accepted"}
    await gateway.webhooks.idle()
    [line] = [r for r in caplog.records if r.name == "app.webhooks"]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "PROVIDER_AUTH_FAILED" in line.getMessage()
    assert (await gateway.deliver(completed(sandbox, rid))).json() == {"outcome": "accepted"}
    await gateway.webhooks.idle()
    delivery = await anext(aiter(subscription))
    assert delivery.event.type is RecordingEventType.COMPLETED


async def test_work_still_running_at_shutdown_gets_its_grace_then_is_cut(
    sandbox_config: SandboxConfig,
    sandbox: Sandbox,
    held: HeldTransport,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings.from_env(webhook_env(sandbox_config, SANDBOX_URL))
    caplog.set_level(logging.WARNING)
    async with running(settings, held) as gateway:
        gateway.webhooks.grace = 0.01
        assert (
            await gateway.deliver(completed(sandbox, sandbox.sample_ids()["twilio"]))
        ).is_success
        await held.arrived.wait()
    assert "1 webhook deliveries cut at shutdown" in caplog.text
    assert "Traceback" not in caplog.text
