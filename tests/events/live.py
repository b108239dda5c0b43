"""Live updates end to end: the sandbox's lifecycle calls the gateway back, the gateway tells
its subscribers. Helpers shared by the one-replica and the two-replica tests.

The sandbox's clock is a ``Steps`` clock that moves on by ``TICK`` at each lifecycle step, so
a recording's duration (the time between its start and its stop) is a known multiple of it,
never the 1 s floor two quick steps would give. ``EXPECTED`` is what each provider status a
callback reports must become as an event (the provider's API, which the gateway refreshes
from, holds that status at the time: the test steps again only once every event is in).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

from app.sandbox import Sandbox, SentCallback
from tests.events.support import receive

#: How far the sandbox's clock moves at each lifecycle step.
TICK = timedelta(seconds=20)
#: Steps within which each provider's account 0 has completed a recording (the lifecycle
#: is seeded: the same every run; a recording is in progress for 1 to 3 steps).
MAX_STEPS = 12

#: (provider, status called back) -> the event's type. Twilio and SignalWire call back
#: ``in-progress`` first (``queued``, ``processing`` have no callback), so it is CREATED;
#: Bird calls back every status, ``accepted`` first; its ``completed`` means the call ended
#: (the media is ready at ``available``).
EXPECTED = {
    ("twilio", "in-progress"): "CREATED",
    ("twilio", "completed"): "COMPLETED",
    ("twilio", "absent"): "FAILED",
    ("signalwire", "in-progress"): "CREATED",
    ("signalwire", "completed"): "COMPLETED",
    ("signalwire", "absent"): "FAILED",
    ("bird", "accepted"): "CREATED",
    ("bird", "ongoing"): "STATUS_CHANGED",
    ("bird", "completed"): "STATUS_CHANGED",
    ("bird", "available"): "COMPLETED",
    ("bird", "absent"): "FAILED",
    ("bird", "failed"): "FAILED",
}

LIVE_EVENTS = """
subscription Live {
  recordingEvents {
    type at missed
    recording { provider id accountId status providerStatus durationSeconds }
  }
}
"""


class Steps:
    """A clock for the sandbox that moves on by ``TICK`` only when told (``tick``)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self) -> None:
        self.now += TICK


def point_at(sandbox: Sandbox, gateway_url: str, tenants: Sequence[str] = ("default",)) -> Steps:
    """Every provider's account ``i`` calls back ``gateway_url``'s receivers of
    ``tenants[i]``; the sandbox runs on a ``Steps`` clock (returned)."""
    for index, tenant in enumerate(tenants):
        for provider in ("twilio", "signalwire", "bird"):
            url = f"{gateway_url}/webhooks/{provider}/{tenant}"
            sandbox.set_callback_url(provider, url, index)
    clock = Steps()
    sandbox.clock = clock
    return clock


def event_of(message: Mapping[str, Any]) -> dict[str, Any]:
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    event: dict[str, Any] = message["payload"]["data"]["recordingEvents"]
    return event


@dataclass
class Seen:
    """What a subscriber received over the steps: the events by (provider, id), in order,
    and the recordings that completed, with their duration in the sandbox."""

    events: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    completed: dict[str, tuple[str, int]] = field(default_factory=dict)  # provider -> (id, s)


async def step(sandbox: Sandbox, clock: Steps) -> list[SentCallback]:
    """One lifecycle step, its callbacks delivered: the attempts made (all acknowledged)."""
    clock.tick()
    before = len(sandbox.callbacks)
    await sandbox.lifecycle.step()
    sent = sandbox.callbacks[before:]
    assert all(each.delivered and each.attempt == 1 for each in sent), sent
    return sent


async def expect_events(
    ws: ClientConnection,
    sandbox: Sandbox,
    sent: list[SentCallback],
    seen: Seen,
    *,
    account: int = 0,
) -> None:
    """One event per callback ``sent``, each the type its status makes, carrying the
    recording's state in the sandbox (a completed one: its new duration); the recordings are
    of each provider's account ``account``."""
    wanted = {(each.provider, each.recording_id): each.status for each in sent}
    got: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in sent:
        event = event_of(await receive(ws))
        recording = event["recording"]
        key = (recording["provider"].lower(), recording["id"])
        assert key in wanted and key not in got, (event, wanted)
        got[key] = event
    for (provider, rid), status in wanted.items():
        event = got[provider, rid]
        record = sandbox.dataset.get(provider, rid)
        assert record is not None
        assert event["type"] == EXPECTED[provider, status], (provider, status, event)
        assert event["missed"] is None
        assert event["recording"]["providerStatus"] == status
        assert event["recording"]["accountId"] == sandbox.account(provider, account)
        if event["type"] == "COMPLETED":
            assert event["recording"]["status"] == "COMPLETED"
            assert event["recording"]["durationSeconds"] == record.duration
            assert record.duration >= TICK.total_seconds()
            seen.completed.setdefault(provider, (rid, record.duration))
        seen.events.setdefault((provider, rid), []).append(event)


class Balancer(httpx.AsyncBaseTransport):
    """A load balancer in front of the replicas, as a provider reaches them (the sandbox's
    ``courier.transport``): a request to the public URL goes, the same bytes and headers, to
    each replica named in ``route`` in turn, over real sockets; the first one's answer is the
    provider's. ``route = ("one", "two")`` is a delivery and its retry landing on both.
    ``outcomes`` holds, per request, each replica's ``outcome`` (or its status code)."""

    def __init__(self, replicas: Mapping[str, str]) -> None:
        self.replicas = dict(replicas)
        self.route: tuple[str, ...] = tuple(replicas)[:1]
        self.outcomes: list[tuple[str, ...]] = []
        self._forward = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        answers: list[httpx.Response] = []
        for name in self.route:
            target = httpx.URL(self.replicas[name])
            url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            forwarded = httpx.Request(request.method, url, headers=request.headers, content=body)
            answer = await self._forward.handle_async_request(forwarded)
            await answer.aread()
            answers.append(answer)
        self.outcomes.append(tuple(_outcome(answer) for answer in answers))
        first = answers[0]
        return httpx.Response(first.status_code, headers=first.headers, content=first.content)

    async def aclose(self) -> None:
        """Nothing: each courier's client closes its transport, and this one outlives them
        (``shutdown`` closes it)."""

    async def shutdown(self) -> None:
        await self._forward.aclose()


def _outcome(answer: httpx.Response) -> str:
    if answer.status_code != 200:
        return str(answer.status_code)
    outcome: str = answer.json()["outcome"]
    return outcome
