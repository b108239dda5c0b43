"""Which bus a gateway runs: Redis pub/sub when the cache is Redis (the replicas share it),
else in-process (the memory cache means one replica: there is no one else to tell)."""

from __future__ import annotations

from app.events.bus import EventBus, MemoryBus
from app.events.redis import RedisBus
from app.settings import Settings


def build_bus(settings: Settings) -> EventBus:
    """The bus for ``settings``; ``start`` it, then ``aclose`` it when done."""
    if settings.cache.kind == "redis":
        return RedisBus.from_settings(settings.cache, settings.subscription_queue)
    return MemoryBus(settings.subscription_queue)
