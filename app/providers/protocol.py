"""The one contract: what the gateway may call on a provider adapter, whatever its wire format.

An abstract base class rather than a ``Protocol``: an adapter says what it is by deriving
from it, and one that leaves a method out cannot even be built (a ``TypeError`` naming the
method), instead of failing the first time a client needs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

import httpx

from app.models import (
    ListQuery,
    MediaFormat,
    Provider,
    Recording,
    RecordingPage,
    Transcription,
)

#: The most upstream calls ``list_transcriptions`` makes for one recording, whatever the
#: provider (list pages, and Bird's text downloads): what the cost estimate counts for a
#: ``transcriptions`` selection (``app.schema.cost``).
TRANSCRIPTION_CALLS = 4


@dataclass(frozen=True)
class ProviderLink:
    """A provider's own link to media that works without the gateway's credentials."""

    url: str
    expires_at: datetime


class RecordingProvider(ABC):
    """One provider account, seen through the gateway's neutral model.

    Recording ids handed to its methods have passed ``check_id``: the gateway checks an id
    once per request, before anything else (``app.providers.check_id``), and ids it got
    from the adapter itself (a listing, a signed media link) need no second look.
    """

    provider: ClassVar[Provider]
    #: The provider's name in messages ("Twilio").
    label: ClassVar[str]
    #: The formats the provider serves media in.
    media_formats: ClassVar[tuple[MediaFormat, ...]]

    @property
    @abstractmethod
    def account_id(self) -> str:
        """The provider account this adapter reads (AC sid, project id, workspace id)."""

    @property
    @abstractmethod
    def endpoint_account(self) -> str:
        """Names the account at its endpoint: with the tenant's name, what cache keys and
        signed links are scoped to (``RecordingService.scope``)."""

    @classmethod
    @abstractmethod
    def check_id(cls, recording_id: str) -> None:
        """Raise BadUserInputError unless ``recording_id`` has this provider's id format.

        A class method: an id is checked even when the provider is not configured."""

    @abstractmethod
    async def fetch(self, recording_id: str) -> Recording:
        """The recording, or RecordingNotFoundError / a ProviderError."""

    @abstractmethod
    async def list_page(self, query: ListQuery, token: str | None, size: int) -> RecordingPage:
        """One page of the account's recordings, newest first.

        ``token`` None starts a listing (``query`` pushed down as far as the provider can,
        at most ``size`` items); otherwise it is a ``next_token`` this adapter returned.
        """

    @abstractmethod
    def is_page_token(self, token: str) -> bool:
        """Whether ``token`` could be a ``next_token`` of this adapter (checked before use)."""

    @abstractmethod
    async def open_media(
        self, recording_id: str, fmt: MediaFormat, range_header: str | None = None
    ) -> httpx.Response:
        """The media as an open, unread streaming response (200 or 206), redirects followed.

        The caller must close it. ``range_header`` is forwarded as ``Range``.
        """

    @abstractmethod
    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        """The provider's own credential-free link (``expires_at`` is the wished expiry; the
        link says when it really expires), or MediaDirectUnavailableError."""

    @abstractmethod
    async def delete(self, recording_id: str) -> bool:
        """Delete the recording at the provider: True if this call deleted it, False if the
        provider says it was gone already (a DELETE is idempotent: its 404 is no error).

        Any other failure is a ProviderError. A retried DELETE whose earlier attempt may have
        reached the provider (its answer lost) and whose retry then finds nothing counts as
        deleted by this call, not as gone already."""

    @abstractmethod
    async def list_transcriptions(self, recording_id: str) -> tuple[Transcription, ...]:
        """The recording's transcriptions, newest first, in at most ``TRANSCRIPTION_CALLS``
        upstream calls; NOT_FOUND when the provider has no such recording."""

    @abstractmethod
    async def request_transcription(self, recording_id: str, locale: str) -> Transcription:
        """Ask the provider to transcribe the recording in ``locale`` (a checked BCP 47 tag);
        the new transcription as the provider acknowledged it, or UNSUPPORTED_BY_PROVIDER
        when its API cannot transcribe an existing recording. It is never sent twice."""
