"""Recording events: what changed, published once, delivered to every subscriber of its tenant.

``RecordingEvent`` is what a verified provider webhook or a mutation (a deletion, a requested
transcription) announces; the ``EventBus`` carries it to the GraphQL subscriptions
(``recordingEvents``) of the event's tenant, on every replica: ``build_bus`` picks
``MemoryBus`` (one process) or ``RedisBus`` (``app.events.redis``: replicas sharing the cache's
Redis).
"""

from app.events.build import build_bus
from app.events.bus import Delivery, EventBus, MemoryBus, Subscription
from app.events.model import RecordingEvent, RecordingEventType

__all__ = [
    "Delivery",
    "EventBus",
    "MemoryBus",
    "RecordingEvent",
    "RecordingEventType",
    "Subscription",
    "build_bus",
]
