"""Media links: what ``Recording.media`` / ``mediaUrl`` hand out, and the tokens behind them.

A PROXY link points at the gateway, ``{GATEWAY_PUBLIC_URL or the request's base}/media/{token}``.
The token is the one ``Signer``'s (purpose ``media``, HMAC-SHA256) over::

    {"p": provider, "t": scope digest, "r": recording id, "f": format, "exp": unix seconds}

The scope (tenant, API endpoint and account: ``RecordingService.scope``) is there only as
a digest: no tenant or account is in clear in a URL. ``/media/{token}`` takes no header (it
goes into ``<audio src>``): the token alone says whose it is. It checks, cheapest first, none
of them costing an upstream request: the signature (403), the expiry (410), then that the
tenant is still configured with that account (403 MEDIA_LINK_UNKNOWN: the link is authentic
but names nothing this gateway serves now).

A DIRECT link is the provider's own, where one works without the gateway's credentials
(each adapter's ``direct_link``). Links are minted per request; nothing cached holds one.
"""

from __future__ import annotations

import enum
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.errors import (
    BadUserInputError,
    MediaLinkExpiredError,
    MediaLinkGoneError,
    MediaLinkInvalidError,
)
from app.models import MediaFormat, Provider, Recording, RecordingStatus
from app.providers import RecordingProvider
from app.recordings import RecordingService
from app.settings import Settings
from app.signing import BadSignatureError, Signer
from app.tenants import Tenants

PURPOSE = "media"
CONTENT_TYPES = {MediaFormat.MP3: "audio/mpeg", MediaFormat.WAV: "audio/wav"}


class MediaDelivery(enum.Enum):
    """How a media link reaches the audio: through the gateway, or straight from the provider."""

    PROXY = "proxy"
    DIRECT = "direct"


@dataclass(frozen=True)
class MediaLink:
    """A link to a recording's audio, and until when it works."""

    url: str
    expires_at: datetime
    format: MediaFormat

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@dataclass(frozen=True)
class MediaClaim:
    """What a media token grants: one recording's media, in one format, until ``expires``."""

    provider: Provider
    scope: str
    recording_id: str
    format: MediaFormat
    expires: int

    def to_payload(self) -> dict[str, Any]:
        return {
            "p": self.provider.value,
            "t": self.scope,
            "r": self.recording_id,
            "f": self.format.value,
            "exp": self.expires,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> MediaClaim:
        """The claim in a verified payload; KeyError/TypeError/ValueError if it is not one."""
        scope, recording_id, expires = payload["t"], payload["r"], payload["exp"]
        if not isinstance(scope, str) or not isinstance(recording_id, str):
            raise TypeError("scope and recording id must be strings")
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise TypeError("exp must be an integer")
        return cls(Provider(payload["p"]), scope, recording_id, MediaFormat(payload["f"]), expires)

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        return f"{self.provider.value}-{self.recording_id}.{self.format.value}"


@dataclass(frozen=True)
class MediaSource:
    """Whose a media link is: the tenant that minted it, and the adapter of its account."""

    tenant: str
    adapter: RecordingProvider


def scope_digest(provider: Provider, scope: str) -> str:
    """Names a tenant's account without saying which (128 bits of SHA-256)."""
    return hashlib.sha256(f"media|{provider.value}|{scope}".encode()).hexdigest()[:32]


class MediaLinks:
    """Mints media links for GraphQL and checks their tokens for ``/media/{token}``."""

    def __init__(
        self,
        tenants: Tenants,
        signer: Signer,
        *,
        max_ttl: int = 3600,
        public_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # What each scope digest a token may carry names (a tenant and its adapter): built
        # once, so a tenant or an account gone from the config is simply not here.
        self._sources = {
            scope_digest(provider, tenant.recordings.scope(provider)): MediaSource(
                tenant.name, tenant.recordings.provider(provider)
            )
            for tenant in tenants.values()
            for provider in tenant.providers
        }
        self._signer = signer
        self._max_ttl = max_ttl
        self._public_url = public_url
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, tenants: Tenants, signer: Signer) -> MediaLinks:
        return cls(tenants, signer, max_ttl=settings.media_max_ttl, public_url=settings.public_url)

    async def link(
        self,
        recordings: RecordingService,
        recording: Recording,
        fmt: MediaFormat,
        delivery: MediaDelivery,
        expires_in: int,
        base_url: str,
    ) -> MediaLink | None:
        """A fresh link to a recording ``recordings`` (its tenant's service) returned, or None
        while the media is not ready or not offered in ``fmt``.

        ``expires_in`` is capped at the configured maximum; below 1 it is BAD_USER_INPUT.
        """
        if expires_in < 1:
            raise BadUserInputError(f"expiresIn must be at least 1 second, got {expires_in}")
        if recording.status is not RecordingStatus.COMPLETED or fmt not in recording.media_formats:
            return None
        adapter = recordings.provider(recording.provider)
        expires = int(self._clock()) + min(expires_in, self._max_ttl)
        if delivery is MediaDelivery.DIRECT:
            found = await adapter.direct_link(recording.id, fmt, _instant(expires))
            return MediaLink(found.url, found.expires_at, fmt)
        scope = scope_digest(recording.provider, recordings.scope(recording.provider))
        claim = MediaClaim(recording.provider, scope, recording.id, fmt, expires)
        token = self._signer.sign(claim.to_payload(), purpose=PURPOSE)
        base = self._public_url or base_url.rstrip("/")
        return MediaLink(f"{base}/media/{token}", _instant(expires), fmt)

    def open(self, token: str) -> tuple[MediaClaim, MediaSource]:
        """The claim of a token and whose it is, or a MediaLinkError."""
        claim = self.claim(token)
        return claim, self.source(claim)

    def claim(self, token: str) -> MediaClaim:
        """The verified, unexpired claim: MEDIA_LINK_INVALID or MEDIA_LINK_EXPIRED otherwise."""
        try:
            claim = MediaClaim.from_payload(self._signer.verify(token, purpose=PURPOSE))
        except (BadSignatureError, KeyError, TypeError, ValueError):
            raise MediaLinkInvalidError("this media link is not valid") from None
        if claim.expires <= self._clock():
            raise MediaLinkExpiredError("this media link has expired; ask the API for a new one")
        return claim

    def source(self, claim: MediaClaim) -> MediaSource:
        """The claim's tenant and the adapter of its account, if the config still has them."""
        source = self._sources.get(claim.scope)
        if source is None or source.adapter.provider is not claim.provider:
            raise MediaLinkGoneError("this media link names a recording this gateway cannot serve")
        return source


def _instant(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)
