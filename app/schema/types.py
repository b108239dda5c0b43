"""GraphQL types, each built from the provider-neutral model with ``from_model``.

The classes below are the public contract (``schema.graphql``): their field order and
descriptions are written out on purpose. ``from_model`` restates nothing: it copies the
model's fields by name and converts only the few whose GraphQL type differs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import strawberry
from strawberry.scalars import JSON

from app import models
from app.errors import BadUserInputError, GatewayError
from app.media import links as media
from app.media.links import MediaDelivery
from app.models import (
    CallDirection,
    MediaFormat,
    Provider,
    RecordingRef,
    RecordingStatus,
    TranscriptionStatus,
)
from app.schema.context import Context
from app.schema.errors import report
from app.schema.scopes import ReadMedia

# The model's enums are the GraphQL enums: registering them keeps one definition.
strawberry.enum(Provider, description="A recording provider.")
strawberry.enum(
    RecordingStatus, description="Normalised recording status; media is ready only at COMPLETED."
)
strawberry.enum(MediaFormat, description="An audio container.")
strawberry.enum(CallDirection, description="Direction of the call.")
strawberry.enum(
    MediaDelivery,
    description=(
        "PROXY: a signed, expiring link to the gateway, which streams the audio (Range "
        "supported). DIRECT: the provider's own link, where one works without the gateway's "
        "credentials (SignalWire, Bird); Twilio has none (MEDIA_DIRECT_UNAVAILABLE)."
    ),
)

MEDIA_HELP = (
    "Null while the recording is not COMPLETED or the provider does not offer `format` "
    "(Bird: MP3 only). `expiresIn` is in seconds, at least 1 (else BAD_USER_INPUT), and "
    "capped silently at GATEWAY_MEDIA_MAX_TTL (default 3600). Links are minted per request. "
    "DIRECT: SignalWire's public URL (its expiry is advisory: the URL itself does not expire); "
    "Bird's presigned URL with its own, real expiry (expiresIn cannot extend it); Twilio: null "
    "with MEDIA_DIRECT_UNAVAILABLE."
)


@strawberry.type(description="A positive amount charged.")
class Money:
    amount: Decimal
    currency: str

    @classmethod
    def from_model(cls, money: models.Money) -> Money:
        return cls(**_attributes(cls, money))


@strawberry.type(description="A link to a recording's audio, and until when it works.")
class MediaLink:
    url: str = strawberry.field(description="For <audio src> or a download; no credentials.")
    expires_at: datetime
    format: MediaFormat
    content_type: str = strawberry.field(description="audio/mpeg or audio/wav.")

    @classmethod
    def from_model(cls, link: media.MediaLink) -> MediaLink:
        return cls(**_attributes(cls, link))


strawberry.enum(
    TranscriptionStatus,
    description=(
        "Normalised transcription status; text is there at COMPLETED. Twilio and SignalWire: "
        "in-progress -> IN_PROGRESS, completed -> COMPLETED, failed -> FAILED. Bird: "
        "accepted -> QUEUED, ongoing -> IN_PROGRESS, available -> COMPLETED, absent and "
        "failed -> FAILED. Anything else: UNKNOWN (see providerStatus)."
    ),
)

TRANSCRIPTIONS_HELP = (
    "Transcriptions of this recording, newest first: read from the provider only when "
    "selected, then cached like the recording (settled ones long, running ones briefly). "
    "Bird gives the text of its three newest COMPLETED transcriptions (older ones: null). "
    "If the provider fails, [] with an error at this path."
)


@strawberry.type(description="A transcription of a recording, normalised across providers.")
class Transcription:
    id: strawberry.ID = strawberry.field(description="The provider's own id (Twilio TR...).")
    status: TranscriptionStatus
    provider_status: str = strawberry.field(description="The provider's own status value.")
    text: str | None = strawberry.field(description="The transcript; null until COMPLETED.")
    locale: str | None = strawberry.field(
        description="BCP 47 language (Bird); null where the provider does not say (Twilio)."
    )
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def from_model(cls, transcription: models.Transcription) -> Transcription:
        return cls(
            id=strawberry.ID(transcription.id),
            status=transcription.status,
            provider_status=transcription.provider_status,
            text=transcription.text,
            locale=transcription.locale,
            created_at=transcription.created_at,
            updated_at=transcription.updated_at,
        )


async def transcriptions_of(
    info: strawberry.Info[Context, None], recording: models.Recording
) -> list[Transcription]:
    """A recording's transcriptions, read only when selected, through the request's
    ``Loaders.transcriptions`` (one batch per tick, a recording asked for twice read once)
    and the cache (``app.transcriptions``). A provider failing to list them does not cost
    the client the recording: ``[]``, with the error at the field's path."""
    ref = RecordingRef(recording.provider, recording.id)
    try:
        found = await info.context.loaders.transcriptions.load(ref)
    except GatewayError as exc:
        report(info, exc)
        return []
    return [Transcription.from_model(t) for t in found.transcriptions]


@strawberry.type(description="One call recording, normalised across providers.")
class Recording:
    provider: Provider
    id: strawberry.ID = strawberry.field(
        description="The provider's own id, as passed to recording()."
    )
    account_id: str | None = strawberry.field(
        description="Twilio/SignalWire AccountSid, or the Bird workspace id."
    )
    call_id: str | None = strawberry.field(
        description="The call's id (Twilio call_sid; Bird sourceId of a call recording)."
    )
    conference_id: str | None
    status: RecordingStatus
    provider_status: str = strawberry.field(description="The provider's own status value.")
    source: str | None = strawberry.field(
        description="How it was made (Twilio casing, e.g. DialVerb); Bird: its origin."
    )
    direction: CallDirection | None = strawberry.field(description="Known for Bird only.")
    from_: str | None = strawberry.field(name="from", description="Caller, E.164 (Bird).")
    to: str | None = strawberry.field(description="Callee, E.164 (Bird).")
    channels: int | None = strawberry.field(description="1 (mono) or 2 (dual-channel).")
    duration_seconds: int | None = strawberry.field(description="Null while unknown.")
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    price: Money | None = strawberry.field(description="Amount charged; null if none.")
    error_code: str | None
    media_formats: list[MediaFormat] = strawberry.field(
        description="Formats the provider can serve this recording in."
    )
    raw: JSON = strawberry.field(
        description="The provider's payload as received, less short-lived signed links."
    )
    model: strawberry.Private[models.Recording]

    @strawberry.field(
        description=f"A link to the audio (scope media:read). {MEDIA_HELP}",
        permission_classes=[ReadMedia],
    )
    async def media(
        self,
        info: strawberry.Info[Context, None],
        format: MediaFormat = MediaFormat.MP3,
        delivery: MediaDelivery = MediaDelivery.PROXY,
        expires_in: int = 900,
    ) -> MediaLink | None:
        link = await _mint(info, self.model, format, delivery, expires_in)
        return MediaLink.from_model(link) if link else None

    @strawberry.field(
        description=f"The URL of `media` (scope media:read). {MEDIA_HELP}",
        permission_classes=[ReadMedia],
    )
    async def media_url(
        self,
        info: strawberry.Info[Context, None],
        format: MediaFormat = MediaFormat.MP3,
        delivery: MediaDelivery = MediaDelivery.PROXY,
        expires_in: int = 900,
    ) -> str | None:
        link = await _mint(info, self.model, format, delivery, expires_in)
        return link.url if link else None

    @strawberry.field(description=TRANSCRIPTIONS_HELP)
    async def transcriptions(self, info: strawberry.Info[Context, None]) -> list[Transcription]:
        return await transcriptions_of(info, self.model)

    @classmethod
    def from_model(cls, recording: models.Recording) -> Recording:
        values = {name: convert(getattr(recording, name)) for name, convert in _SERVED}
        return cls(**values, model=recording)


# Fields of models.Recording the API deliberately does not serve (none today). Every
# other field must be a field of Recording above (tests/test_codec.py checks).
NOT_EXPOSED: frozenset[str] = frozenset()

# The model's values that have another type in GraphQL; all others pass as they are.
_TO_GRAPHQL: dict[str, Callable[[Any], Any]] = {
    "id": strawberry.ID,
    "price": lambda price: Money.from_model(price) if price else None,
    "media_formats": list,
    "raw": lambda raw: JSON(dict(raw)),
}


def _same(value: Any) -> Any:
    return value


# Each served field of the model with its conversion, worked out once (a hot path).
_SERVED: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
    (field.name, _TO_GRAPHQL.get(field.name, _same))
    for field in dataclasses.fields(models.Recording)
    if field.name not in NOT_EXPOSED
)


def _attributes(graphql_type: type, model: object) -> dict[str, Any]:
    """The constructor arguments of the GraphQL type ``graphql_type`` (resolvers take none),
    each read from ``model``'s attribute of the same name: for types that copy their model."""
    return {
        field.name: getattr(model, field.name)
        for field in dataclasses.fields(graphql_type)
        if field.init
    }


async def _mint(
    info: strawberry.Info[Context, None],
    recording: models.Recording,
    fmt: MediaFormat,
    delivery: MediaDelivery,
    expires_in: int,
) -> media.MediaLink | None:
    context = info.context
    if delivery is MediaDelivery.DIRECT and context.streaming:  # a provider call per event
        raise BadUserInputError("in a subscription, media links are PROXY only")
    link = await context.media.link(
        context.recordings, recording, fmt, delivery, expires_in, context.base_url
    )
    if link is not None:  # an answer holding a link is not reused once the link is dead
        context.freshness.link(link.expires_at)
    return link
