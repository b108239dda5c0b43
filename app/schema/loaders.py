"""Per-request DataLoaders: one batch per tick, duplicates fetched once.

Never shared across requests: a loader's memo would leak one client's answers
to another. The process-wide sharing is the cache's job, with its tenant-scoped keys.

A loader gives the cache's ``Fresh``, not the bare recording: a ref asked for twice is loaded
once, so only the resolvers know every path a recording lands at, and they list the stale
ones (``Context.stale_paths``).

A WebSocket connection has one context for its whole life (hours, and every subscription
event and operation on it), so its loaders (``for_connection``) batch but keep no memo: a
memo would answer a later event with what an earlier one read (a ``TRANSCRIBED`` event
showing the transcriptions of before) and grow with every recording the socket ever saw.
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

    @classmethod
    def for_connection(cls, service: RecordingService) -> Loaders:
        """Loaders over ``service`` for a WebSocket connection: batched per tick, no memo
        (see the module's doc), and no freshness to report (no HTTP answer is cached)."""

        async def load(refs: list[RecordingRef]) -> Sequence[Fresh | BaseException]:
            return await service.fetch_many(refs)

        async def load_transcriptions(
            refs: list[RecordingRef],
        ) -> Sequence[FreshTranscriptions | BaseException]:
            return await transcriptions.fetch_many(service, refs)

        return cls(
            recording=DataLoader(load_fn=load, cache=False),
            transcriptions=DataLoader(load_fn=load_transcriptions, cache=False),
        )
