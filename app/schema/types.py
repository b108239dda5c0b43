"""GraphQL types, each built from the provider-neutral model with ``from_model``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import strawberry
from strawberry.scalars import JSON

from app import models
from app.models import CallDirection, MediaFormat, Provider, RecordingStatus

# The model's enums are the GraphQL enums: registering them keeps one definition.
strawberry.enum(Provider, description="A recording provider.")
strawberry.enum(
    RecordingStatus, description="Normalised recording status; media is ready only at COMPLETED."
)
strawberry.enum(MediaFormat, description="An audio container.")
strawberry.enum(CallDirection, description="Direction of the call.")


@strawberry.type(description="A positive amount charged.")
class Money:
    amount: Decimal
    currency: str


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

    @classmethod
    def from_model(cls, recording: models.Recording) -> Recording:
        price = recording.price
        return cls(
            provider=recording.provider,
            id=strawberry.ID(recording.id),
            account_id=recording.account_id,
            call_id=recording.call_id,
            conference_id=recording.conference_id,
            status=recording.status,
            provider_status=recording.provider_status,
            source=recording.source,
            direction=recording.direction,
            from_=recording.from_,
            to=recording.to,
            channels=recording.channels,
            duration_seconds=recording.duration_seconds,
            started_at=recording.started_at,
            ended_at=recording.ended_at,
            created_at=recording.created_at,
            updated_at=recording.updated_at,
            price=Money(amount=price.amount, currency=price.currency) if price else None,
            error_code=recording.error_code,
            media_formats=list(recording.media_formats),
            raw=JSON(dict(recording.raw)),
        )
