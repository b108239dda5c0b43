"""The sandbox's recordings on a clock: each step moves them through their provider's states,
and the providers' REST APIs serve the new state at once (times, duration, price included).

Driven by `lifecycle.step()` with a hand-moved clock; the background clock is checked once, on
a served app, by waiting for its first callback to arrive (an event, not a sleep)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.sandbox.data import SandboxRecording
from app.sandbox.lifecycle import KEEP_PER_ACCOUNT, PATHS
from tests.sandbox.clock import START, Clock
from tests.sandbox.receiver import receiver
from tests.servers import serve

PUBLIC_URL = "http://sandbox.test"
STEP = timedelta(seconds=10)


@pytest.fixture
def app() -> Starlette:
    # The seeded data ends before START's day: what the lifecycle makes is newer.
    anchor = START.replace(hour=0, minute=0)
    config = SandboxConfig(recordings_per_provider=3, public_url=PUBLIC_URL, anchor=anchor)
    return create_sandbox_app(config)


@pytest.fixture
def sandbox(app: Starlette) -> Sandbox:
    state: Sandbox = app.state.sandbox
    state.clock = Clock()
    return state


async def fetch(client: httpx.AsyncClient, sandbox: Sandbox, provider: str, rid: str) -> Any:
    account = sandbox.accounts(provider)[0]
    if provider == "bird":
        path = f"/workspaces/{account.account}/recordings/{rid}"
        return (
            await client.get(path, headers={"authorization": f"AccessKey {account.secret}"})
        ).json()
    prefix = "" if provider == "twilio" else "/api/laml"
    path = f"{prefix}/2010-04-01/Accounts/{account.account}/Recordings/{rid}.json"
    return (await client.get(path, auth=(account.account, account.secret))).json()


async def follow(
    sandbox: Sandbox, client: httpx.AsyncClient, provider: str
) -> tuple[str, list[tuple[datetime, Any]]]:
    """The first recording account 0 of `provider` starts, and what its REST API said after
    each step until the end of its path."""
    assert isinstance(sandbox.clock, Clock)
    [first] = [
        r
        for r in await sandbox.lifecycle.step()
        if (r.provider, r.account) == (provider, sandbox.account(provider))
    ]
    seen = [(sandbox.clock.now, await fetch(client, sandbox, provider, first.id))]
    while any(r.id == first.id for r in sandbox.lifecycle.live(provider)):
        sandbox.clock.now += STEP
        await sandbox.lifecycle.step()
        body = await fetch(client, sandbox, provider, first.id)
        if body != seen[-1][1]:
            seen.append((sandbox.clock.now, body))
    return first.id, seen


def on_a_path(provider: str, statuses: list[str]) -> bool:
    return any(tuple(statuses) == path for path in PATHS[provider])


@pytest.mark.anyio
async def test_twilio_recordings_go_in_progress_processing_completed_in_the_rest_api(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    for _ in range(6):  # enough recordings that one takes the usual path
        rid, seen = await follow(sandbox, client, "twilio")
        statuses = [body["status"] for _, body in seen]
        assert on_a_path("twilio", statuses), statuses
        if statuses[-1] == "completed":
            break
    (created, running), (stopped, processing), (done, completed) = seen
    assert running["sid"] == rid and running["duration"] == "-1" and running["price"] is None
    assert running["start_time"] == running["date_created"] == "Mon, 04 May 2026 09:30:00 +0000"
    seconds = round((stopped - created).total_seconds())
    assert processing["duration"] == completed["duration"] == str(seconds)
    assert processing["price"] is None
    assert completed["price"] == "-0.00250" and completed["price_unit"] == "USD"
    assert parsedate_to_datetime(processing["date_updated"]) == stopped
    assert parsedate_to_datetime(completed["date_updated"]) == done > stopped
    listing = await client.get(
        f"/2010-04-01/Accounts/{sandbox.account('twilio')}/Recordings.json",
        auth=(sandbox.account("twilio"), sandbox.accounts("twilio")[0].secret),
    )
    sids = [r["sid"] for r in listing.json()["recordings"]]
    assert rid in sids and sids.index(rid) < len(sids) - 3  # newer than the seeded ones


@pytest.mark.anyio
async def test_signalwire_recordings_are_queued_before_they_start(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    _, seen = await follow(sandbox, client, "signalwire")
    statuses = [body["status"] for _, body in seen]
    assert on_a_path("signalwire", statuses), statuses
    (_, queued), (started_at, running), (ended_at, stopped) = seen
    assert queued["start_time"] is None and queued["end_time"] is None
    assert running["start_time"] == "Mon, 04 May 2026 09:30:10 +0000" and running["duration"] == 0
    assert stopped["end_time"] is not None
    if stopped["status"] == "completed":
        assert stopped["duration"] == round((ended_at - started_at).total_seconds())
        assert stopped["price"] == "-0.0025"
    else:
        assert stopped["duration"] == 0 and stopped["error_code"] in ("16101", "16102")


@pytest.mark.anyio
async def test_bird_recordings_become_available_with_their_times(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    for _ in range(6):
        _, seen = await follow(sandbox, client, "bird")
        statuses = [body["status"] for _, body in seen]
        assert on_a_path("bird", statuses), statuses
        if statuses[-1] == "available":
            break
    (_, accepted), (_, ongoing), (_, completed), (_, available) = seen
    assert accepted["startedAt"] == accepted["endedAt"] == "0001-01-01T00:00:00Z"
    assert ongoing["startedAt"] != "0001-01-01T00:00:00Z" and ongoing["duration"] == 0
    assert completed["endedAt"] != "0001-01-01T00:00:00Z" and "url" not in completed
    assert available["duration"] == completed["duration"] > 0
    assert available["url"].startswith(PUBLIC_URL)  # the media is ready
    media = await client.get(available["url"])
    assert media.status_code == 200 and media.headers["content-type"] == "audio/mpeg"


@pytest.mark.anyio
async def test_some_recordings_end_absent_or_failed(sandbox: Sandbox) -> None:
    ends: dict[str, set[str]] = {"twilio": set(), "signalwire": set(), "bird": set()}
    for _ in range(150):
        for record in sandbox.lifecycle.advance():
            if not any(record.id == live.id for live in sandbox.lifecycle.live(record.provider)):
                ends[record.provider].add(record.status)
    assert ends == {
        "twilio": {"completed", "absent"},
        "signalwire": {"completed", "absent"},
        "bird": {"available", "absent", "failed"},
    }


@pytest.mark.anyio
async def test_a_recording_deleted_through_the_api_stops_moving(
    sandbox: Sandbox, client: httpx.AsyncClient
) -> None:
    [created] = [r for r in sandbox.lifecycle.advance() if r.provider == "bird"][:1]
    account = sandbox.accounts("bird")[0]
    path = f"/workspaces/{account.account}/recordings/{created.id}"
    deleted = await client.delete(path, headers={"authorization": f"AccessKey {account.secret}"})
    assert deleted.status_code == 204
    for _ in range(5):
        assert all(r.id != created.id for r in sandbox.lifecycle.advance())
    assert sandbox.dataset.get("bird", created.id) is None


def test_the_lifecycle_keeps_a_bounded_number_of_recordings() -> None:
    sandbox: Sandbox = create_sandbox_app(SandboxConfig(recordings_per_provider=0)).state.sandbox
    for _ in range(3 * KEEP_PER_ACCOUNT):
        sandbox.lifecycle.advance()
    for provider in ("twilio", "signalwire", "bird"):
        for account in sandbox.accounts(provider):
            held = sandbox.dataset.listing(provider, account.account)
            assert KEEP_PER_ACCOUNT // 2 < len(held) <= KEEP_PER_ACCOUNT


def test_the_same_seed_makes_the_same_recordings() -> None:
    def run() -> list[SandboxRecording]:
        sandbox: Sandbox = create_sandbox_app(SandboxConfig()).state.sandbox
        sandbox.clock = Clock()
        return [r for _ in range(5) for r in sandbox.lifecycle.advance()]

    assert run() == run()


@pytest.mark.anyio
async def test_a_served_sandbox_steps_on_its_own_clock_and_calls_back() -> None:
    with receiver() as hook:
        config = SandboxConfig(
            recordings_per_provider=1,
            callback_urls={"signalwire": f"{hook.url}/sw"},
            lifecycle_interval=0.05,
        )
        app = create_sandbox_app(config)
        sandbox: Sandbox = app.state.sandbox
        with serve(app):  # its lifespan runs the clock
            arrived = await asyncio.to_thread(hook.arrived.wait, 30)
            assert arrived
        ticks = sandbox.lifecycle.ticks
    assert ticks >= 2  # queued calls nobody back: the first callback is a later tick's
    [first, *_] = hook.to("/sw")
    assert b"RecordingStatus=in-progress" in first.body


def test_without_an_interval_nothing_moves_on_its_own() -> None:
    app = create_sandbox_app(SandboxConfig(recordings_per_provider=1))
    sandbox: Sandbox = app.state.sandbox
    with serve(app) as url:
        listed = httpx.get(
            f"{url}/workspaces/{sandbox.account('bird')}/recordings",
            headers={"authorization": f"AccessKey {sandbox.accounts('bird')[0].secret}"},
        )
    assert len(listed.json()["results"]) == 1
    assert sandbox.lifecycle.ticks == 0
