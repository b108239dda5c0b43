"""Transcriptions of recordings: read through the cache, and asked for.

The same order of checks as ``app.recordings``, cheapest first, so bad input never costs an
upstream call: the locale's form (a new transcription), the recording id's format, whether
the provider is configured, then the cache (single-flight, tenant-scoped keys:
``RecordingCache.transcriptions_key``), and only then the provider.

Asking for a transcription drops the cached transcriptions of that recording, whatever the
provider answered (a request that timed out may still have been acted on), so the next read
asks the provider, and every cached GraphQL answer holding them is purged (``on_change``);
only UNSUPPORTED_BY_PROVIDER, refused before any call, leaves them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence

from app.cache import FreshTranscriptions, RecordingCache
from app.errors import BadUserInputError, UnsupportedByProviderError
from app.models import Provider, RecordingRef, Transcription
from app.providers import check_id
from app.recordings import RecordingService

#: A BCP 47 language tag as providers take them: a 2-3 letter language, then up to four
#: subtags (script, region, variant: ``en-US``, ``cmn-CN``, ``en-GB-WLS``, ``zh-Hant-TW``).
LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
#: The longest locale accepted (RFC 5646 advises supporting at least 35 characters).
MAX_LOCALE_LENGTH = 35


def check_locale(locale: str) -> None:
    """BAD_USER_INPUT unless ``locale`` looks like a BCP 47 tag (the provider knows which
    ones it supports, and says so itself)."""
    if len(locale) > MAX_LOCALE_LENGTH or not LOCALE.fullmatch(locale):
        raise BadUserInputError(
            f"{locale[:40]!r} is not a BCP 47 language tag (like en-US), "
            f"at most {MAX_LOCALE_LENGTH} characters"
        )


def _key(service: RecordingService, provider: Provider, recording_id: str) -> str:
    return RecordingCache.transcriptions_key(service.key_scope(provider), recording_id)


async def fetch(
    service: RecordingService, provider: Provider, recording_id: str
) -> FreshTranscriptions:
    """The recording's transcriptions, newest first, and until when they are fresh."""
    check_id(provider, recording_id)
    adapter = service.provider(provider)
    key = _key(service, provider, recording_id)
    return await service.cache.fetch_transcriptions(
        key, lambda: adapter.list_transcriptions(recording_id)
    )


async def fetch_many(
    service: RecordingService, refs: Sequence[RecordingRef]
) -> list[FreshTranscriptions | BaseException]:
    """``fetch`` for each ref, in order, all concurrently; a failure is its ref's item."""
    return await asyncio.gather(
        *(fetch(service, ref.provider, ref.id) for ref in refs), return_exceptions=True
    )


async def forget(service: RecordingService, provider: Provider, recording_id: str) -> None:
    """The recording's transcriptions changed (a provider's transcription callback): drop
    them, and every cached answer holding them, so the next read asks the provider."""
    await service.cache.drop_transcriptions(_key(service, provider, recording_id))


async def request(
    service: RecordingService, provider: Provider, recording_id: str, locale: str
) -> Transcription:
    """Ask the provider for a new transcription; the cached ones are dropped (see module)."""
    check_locale(locale)
    check_id(provider, recording_id)
    adapter = service.provider(provider)
    key = _key(service, provider, recording_id)
    asked = True
    try:
        return await adapter.request_transcription(recording_id, locale)
    except UnsupportedByProviderError:
        asked = False  # refused before any call: nothing changed upstream
        raise
    finally:
        if asked:
            await service.cache.drop_transcriptions(key)
