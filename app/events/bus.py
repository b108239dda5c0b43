"""The event bus: ``publish`` an event, and every live ``Subscription`` of its tenant gets it.

``MemoryBus`` delivers within the process (the memory cache's deployments: one replica).
A subscription's queue is bounded: when a slow subscriber lets it fill, the oldest events
are dropped and counted, and the next event it reads carries that count (``Delivery.missed``)
so the client knows to query again. Publishing never waits for a subscriber.

A subscription may carry a filter (``accepts``), checked before its queue: an event it does
not want never takes a place there, so it can neither push out a wanted one nor count as
missed.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from app.events.model import RecordingEvent

#: A subscription's queue when ``GATEWAY_SUBSCRIPTION_QUEUE`` does not say.
QUEUE_SIZE = 100

#: Which events a subscriber wants (None: all of its tenant's).
Accepts = Callable[[RecordingEvent], bool]


@dataclass(frozen=True)
class Delivery:
    """An event as one subscriber reads it: ``missed`` events were dropped just before it."""

    event: RecordingEvent
    missed: int = 0


class Subscription:
    """One subscriber's bounded queue of a tenant's events (read with ``async for``)."""

    def __init__(self, tenant: str, size: int = QUEUE_SIZE, accepts: Accepts | None = None) -> None:
        self.tenant = tenant
        self.accepts = accepts
        self._queue: deque[RecordingEvent] = deque()
        self._size = max(1, size)
        self._missed = 0
        self._ready = asyncio.Event()
        self._closed = False

    def put(self, event: RecordingEvent) -> None:
        """Queue ``event`` if wanted; when the queue is full, drop the oldest one (counted)."""
        if self._closed or (self.accepts is not None and not self.accepts(event)):
            return
        if len(self._queue) >= self._size:
            self._queue.popleft()
            self._missed += 1
        self._queue.append(event)
        self._ready.set()

    def close(self) -> None:
        """No more events: a reader waiting for one stops."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> AsyncIterator[Delivery]:
        return self._deliveries()

    async def _deliveries(self) -> AsyncIterator[Delivery]:
        while True:
            while not self._queue:
                if self._closed:
                    return
                self._ready.clear()
                await self._ready.wait()
            event = self._queue.popleft()
            missed, self._missed = self._missed, 0
            yield Delivery(event, missed)


class EventBus(ABC):
    """Carries events to the subscriptions of their tenant."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._subscriptions: dict[str, set[Subscription]] = {}

    @abstractmethod
    async def publish(self, event: RecordingEvent) -> None:
        """Send ``event`` to every subscription of its tenant (on every replica)."""

    async def start(self) -> None:
        """Begin receiving other replicas' events (nothing to do within one process)."""
        return None

    def subscribe(self, tenant: str, accepts: Accepts | None = None) -> Subscription:
        """A new subscription to ``tenant``'s events (those ``accepts`` wants, if given);
        ``unsubscribe`` it when done."""
        subscription = Subscription(tenant, self.queue_size, accepts)
        self._subscriptions.setdefault(tenant, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        subscribers = self._subscriptions.get(subscription.tenant)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.tenant]

    def deliver(self, event: RecordingEvent) -> None:
        """Hand ``event`` to this process's subscriptions of its tenant."""
        for subscription in tuple(self._subscriptions.get(event.tenant, ())):
            subscription.put(event)

    async def aclose(self) -> None:
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                self.unsubscribe(subscription)


class MemoryBus(EventBus):
    """Events within this process."""

    async def publish(self, event: RecordingEvent) -> None:
        self.deliver(event)
