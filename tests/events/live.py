"""Live updates end to end: the sandbox's lifecycle calls the gateway back, the gateway tells
its subscribers. Helpers shared by the one-replica and the two-replica tests.

The sandbox's clock is a ``Steps`` clock that moves on by ``TICK`` at each lifecycle step, so
a recording's duration (the time between its start and its stop) is a known multiple of it,
never the 1 s floor two quick steps would give. ``EXPECTED`` is what each provider status a
callback reports must become as an event (the provider's API, which the gateway refreshes
from, holds that status at the time: the test steps again only once every event is in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

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


def point_at(sandbox: Sandbox, gateway_url: str, tenant: str = "default") -> Steps:
    """Every provider's account 0 calls back ``gateway_url``'s receivers of ``tenant``; the
    sandbox runs on a ``Steps`` clock (returned)."""
    for provider in ("twilio", "signalwire", "bird"):
        sandbox.set_callback_url(provider, f"{gateway_url}/webhooks/{provider}/{tenant}")
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
    ws: ClientConnection, sandbox: Sandbox, sent: list[SentCallback], seen: Seen
) -> None:
    """One event per callback ``sent``, each the type its status makes, carrying the
    recording's state in the sandbox (a completed one: its new duration)."""
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
        assert event["recording"]["accountId"] == sandbox.account(provider)
        if event["type"] == "COMPLETED":
            assert event["recording"]["status"] == "COMPLETED"
            assert event["recording"]["durationSeconds"] == record.duration
            assert record.duration >= TICK.total_seconds()
            seen.completed.setdefault(provider, (rid, record.duration))
        seen.events.setdefault((provider, rid), []).append(event)
