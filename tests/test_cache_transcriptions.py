"""The cache's rules for a recording's transcriptions: keys, TTLs, single-flight, changes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.cache import (
    TRANSCRIPTIONS_SHAPE,
    BoundedMemoryCache,
    RecordingCache,
    TtlPolicy,
)
from app.models import Provider, Transcription, TranscriptionStatus

pytestmark = pytest.mark.anyio

RID = "RE" + "a" * 32
POLICY = TtlPolicy(terminal=3600, active=5, not_found=30)


def transcription(status: TranscriptionStatus, tid: str = "TR" + "1" * 32) -> Transcription:
    return Transcription(Provider.TWILIO, tid, RID, status, status.value, text="hi")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_keys_are_beside_the_recordings_and_tenant_scoped() -> None:
    mine = RecordingCache.scoped(Provider.TWILIO, "tenant-a|https://api.twilio.com|AC1")
    theirs = RecordingCache.scoped(Provider.TWILIO, "tenant-b|https://api.twilio.com|AC1")
    key = RecordingCache.transcriptions_key(mine, RID)
    assert key.startswith(RecordingCache.key(mine, RID))
    assert key.endswith(f":transcriptions:{TRANSCRIPTIONS_SHAPE}")
    assert key != RecordingCache.transcriptions_key(theirs, RID)
    assert "AC1" not in key and "tenant-a" not in key


@pytest.mark.parametrize(
    ("statuses", "ttl"),
    [
        ((), 30),
        ((TranscriptionStatus.COMPLETED, TranscriptionStatus.FAILED), 3600),
        ((TranscriptionStatus.COMPLETED, TranscriptionStatus.IN_PROGRESS), 5),
        ((TranscriptionStatus.QUEUED,), 5),
        ((TranscriptionStatus.UNKNOWN,), 5),
    ],
)
def test_settled_long_running_short_none_briefly(
    statuses: tuple[TranscriptionStatus, ...], ttl: int
) -> None:
    found = [transcription(s, f"TR{i:032x}") for i, s in enumerate(statuses)]
    assert POLICY.for_transcriptions(found) == ttl


async def test_concurrent_misses_share_one_load_and_a_hit_loads_nothing() -> None:
    clock = Clock()
    cache = RecordingCache(BoundedMemoryCache(100), POLICY, clock=clock)
    loads: list[int] = []
    release = asyncio.Event()

    async def load() -> tuple[Transcription, ...]:
        loads.append(1)
        await release.wait()
        return (transcription(TranscriptionStatus.COMPLETED),)

    pending = [asyncio.ensure_future(cache.fetch_transcriptions("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*pending)
    assert loads == [1]
    assert {r.expires for r in results} == {clock.now + 3600}
    hit = await cache.fetch_transcriptions("k", load)
    assert loads == [1] and hit.key == "k" and hit.transcriptions == results[0].transcriptions


async def test_a_change_is_told_and_forget_drops_the_entry() -> None:
    clock = Clock()
    cache = RecordingCache(BoundedMemoryCache(100), POLICY, clock=clock)
    told: list[Sequence[str]] = []

    async def on_change(keys: Sequence[str]) -> None:
        told.append(keys)

    cache.on_change = on_change
    running = (transcription(TranscriptionStatus.IN_PROGRESS),)
    done = (transcription(TranscriptionStatus.COMPLETED),)
    answers = [running, running, done, done]
    loads: list[int] = []

    async def load() -> tuple[Transcription, ...]:
        loads.append(1)
        return answers[len(loads) - 1]

    await cache.fetch_transcriptions("k", load)
    clock.now += 6  # past the short TTL of a running one
    await cache.fetch_transcriptions("k", load)
    assert told == [], "the same list again is no change"
    clock.now += 6
    fresh = await cache.fetch_transcriptions("k", load)
    assert fresh.transcriptions == done and told == [["k"]]
    await cache.drop_transcriptions("k")
    assert told == [["k"], ["k"]]
    assert (await cache.fetch_transcriptions("k", load)).transcriptions == done
    assert len(loads) == 4, "after forget, the provider is asked again"
