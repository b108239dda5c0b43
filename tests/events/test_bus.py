"""The in-process event bus: tenant-scoped delivery and bounded queues."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from app.events import Delivery, MemoryBus, RecordingEvent, RecordingEventType
from app.models import Provider, Recording, RecordingStatus

pytestmark = pytest.mark.anyio


def event(tenant: str, n: int = 0) -> RecordingEvent:
    recording = Recording(
        Provider.BIRD, f"rec-{n}", RecordingStatus.COMPLETED, provider_status="available"
    )
    return RecordingEvent(tenant, RecordingEventType.COMPLETED, recording, datetime.now(UTC))


async def take(deliveries: object, count: int) -> list[Delivery]:
    assert hasattr(deliveries, "__anext__")
    return [await asyncio.wait_for(deliveries.__anext__(), 5) for _ in range(count)]


async def test_an_event_reaches_its_tenants_subscribers_only() -> None:
    bus = MemoryBus()
    mine, theirs = bus.subscribe("acme"), bus.subscribe("globex")
    await bus.publish(event("acme", 1))
    await bus.publish(event("globex", 2))
    [got] = await take(aiter(mine), 1)
    assert got.event.recording.id == "rec-1"
    assert got.missed == 0
    [other] = await take(aiter(theirs), 1)
    assert other.event.recording.id == "rec-2"


async def test_a_full_queue_drops_the_oldest_and_says_how_many() -> None:
    bus = MemoryBus(queue_size=3)
    subscription = bus.subscribe("acme")
    for n in range(5):
        await bus.publish(event("acme", n))
    got = await take(aiter(subscription), 3)
    assert [d.event.recording.id for d in got] == ["rec-2", "rec-3", "rec-4"]
    assert [d.missed for d in got] == [2, 0, 0]


async def test_unsubscribing_ends_the_stream() -> None:
    bus = MemoryBus()
    subscription = bus.subscribe("acme")
    bus.unsubscribe(subscription)
    assert [d async for d in subscription] == []
    await bus.publish(event("acme"))  # nobody left: nothing to deliver to


async def test_a_filter_runs_before_the_queue_so_what_it_drops_is_never_missed() -> None:
    bus = MemoryBus(queue_size=2)
    evens = bus.subscribe("acme", accepts=lambda e: int(e.recording.id.split("-")[1]) % 2 == 0)
    for n in range(6):  # 0, 2, 4 pass: one more than the queue holds
        await bus.publish(event("acme", n))
    got = await take(aiter(evens), 2)
    assert [d.event.recording.id for d in got] == ["rec-2", "rec-4"]
    assert [d.missed for d in got] == [1, 0]
