"""Per-request DataLoaders: one batch per tick, duplicates fetched once.

Never shared across requests: a loader's memo would leak one client's answers
to another. The process-wide sharing is the cache's job, with its tenant-scoped keys.

A loader gives the cache's ``Fresh``, not the bare recording: a ref asked for twice is loaded
once, so only the resolvers know every path a recording lands at, and they list the stale
ones (``Context.stale_paths``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from app import transcriptions
from app.cache import Fresh, FreshTranscriptions
from app.models import RecordingRef
from app.recordings import RecordingService
from app.schema.http_cache import Freshness


@dataclass(frozen=True)
class Loaders:
    """The loaders of one request."""

    recording: DataLoader[RecordingRef, Fresh]
    #: A recording's transcriptions (``app.transcriptions``).
    transcriptions: DataLoader[RecordingRef, FreshTranscriptions]

    @classmethod
    def for_request(cls, service: RecordingService, freshness: Freshness) -> Loaders:
        """Loaders over ``service`` that report each recording they give to ``freshness``
        (how long the answer holding it may be cached)."""

        async def load(refs: list[RecordingRef]) -> Sequence[Fresh | BaseException]:
            found = await service.fetch_many(refs)
            for result in found:
                if isinstance(result, Fresh):
                    freshness.recording(result)
            return found

        async def load_transcriptions(
            refs: list[RecordingRef],
        ) -> Sequence[FreshTranscriptions | BaseException]:
            found = await transcriptions.fetch_many(service, refs)
            for result in found:
                if isinstance(result, FreshTranscriptions):
                    freshness.transcriptions(result)
            return found

        return cls(
            recording=DataLoader(load_fn=load),
            transcriptions=DataLoader(load_fn=load_transcriptions),
        )
