"""What every provider adapter offers the gateway, whatever its wire format."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

import httpx

from app.models import ListQuery, MediaFormat, Provider, Recording, RecordingPage


@dataclass(frozen=True)
class ProviderLink:
    """A provider's own link to media that works without the gateway's credentials."""

    url: str
    expires_at: datetime


class RecordingProvider(Protocol):
    """One provider account, seen through the gateway's neutral model."""

    provider: ClassVar[Provider]

    @property
    def account_id(self) -> str:
        """The provider account this adapter reads (AC sid, project id, workspace id)."""
        ...

    @property
    def tenant(self) -> str:
        """Names the account at its endpoint: what cache keys and signed links are scoped to."""
        ...

    def check_id(self, recording_id: str) -> None:
        """Raise BadUserInputError unless ``recording_id`` has this provider's id format."""
        ...

    async def fetch(self, recording_id: str) -> Recording:
        """The recording, or RecordingNotFoundError / a ProviderError."""
        ...

    async def list_page(self, query: ListQuery, token: str | None, size: int) -> RecordingPage:
        """One page of the account's recordings, newest first.

        ``token`` None starts a listing (``query`` pushed down as far as the provider can,
        at most ``size`` items); otherwise it is a ``next_token`` this adapter returned.
        """
        ...

    def is_page_token(self, token: str) -> bool:
        """Whether ``token`` could be a ``next_token`` of this adapter (checked before use)."""
        ...

    @property
    def media_formats(self) -> tuple[MediaFormat, ...]:
        """The formats the provider serves media in."""
        ...

    async def open_media(
        self, recording_id: str, fmt: MediaFormat, range_header: str | None = None
    ) -> httpx.Response:
        """The media as an open, unread streaming response (200 or 206), redirects followed.

        The caller must close it. ``range_header`` is forwarded as ``Range``.
        """
        ...

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        """The provider's own credential-free link (``expires_at`` is the wished expiry; the
        link says when it really expires), or MediaDirectUnavailableError."""
        ...
