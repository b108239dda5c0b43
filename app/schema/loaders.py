"""Per-request DataLoaders: one batch per tick, duplicates fetched once.

Never shared across requests: a loader's memo would leak one client's answers
to another. The process-wide sharing is the cache's job, with its tenant-scoped keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from app.models import Recording, RecordingRef
from app.recordings import RecordingService


@dataclass(frozen=True)
class Loaders:
    """The loaders of one request."""

    recording: DataLoader[RecordingRef, Recording]

    @classmethod
    def for_request(cls, service: RecordingService) -> Loaders:
        async def load(refs: list[RecordingRef]) -> Sequence[Recording | BaseException]:
            return await service.get_many(refs)

        return cls(recording=DataLoader(load_fn=load))
