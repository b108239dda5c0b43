"""The Subscription root: ``recordingEvents``, a live stream of the caller's tenant's
recording events (``app.events``), served over WebSocket (``graphql-transport-ws``, see
``app.schema.view``).

Each subscription is one bounded queue on the event bus (``GATEWAY_SUBSCRIPTION_QUEUE``),
holding only the events its filter accepts: the filter runs before the queue (a few
comparisons per event), so an event filtered out never counts as missed. When a slow client
lets the queue fill, the oldest events are dropped and the next one delivered says how many
(``missed``): the client should query what it cares about again.

Strictly tenant-scoped: the bus is keyed by tenant and the subscription is made for the
tenant the connection authenticated as, whatever the filter says.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from datetime import datetime

import strawberry

from app import events
from app.errors import BadUserInputError
from app.events import Delivery, RecordingEventType
from app.metrics import SUBSCRIPTIONS_ACTIVE
from app.models import Provider
from app.schema.context import Context
from app.schema.scopes import ReadRecordings
from app.schema.types import Recording

strawberry.enum(RecordingEventType, description="What happened to a recording.")


@strawberry.type(description="One change of one recording, as a subscriber receives it.")
class RecordingEvent:
    type: RecordingEventType
    recording: Recording = strawberry.field(description="The recording's state after it.")
    at: datetime = strawberry.field(description="When the gateway learned of it.")
    missed: int | None = strawberry.field(
        description=(
            "How many of your events were dropped just before this one because your client "
            "read too slowly (its queue holds GATEWAY_SUBSCRIPTION_QUEUE events); null when "
            "none were. When set, query the recordings you follow again."
        )
    )

    @classmethod
    def from_delivery(cls, delivery: Delivery) -> RecordingEvent:
        event = delivery.event
        return cls(
            type=event.type,
            recording=Recording.from_model(event.recording),
            at=event.at,
            missed=delivery.missed or None,
        )


@strawberry.input(
    description=(
        "Which events to receive; every field given narrows them (a list: any of its values)."
    )
)
class RecordingEventFilter:
    providers: list[Provider] | None = strawberry.field(
        default=None, description="Only recordings of these providers."
    )
    call_id: str | None = strawberry.field(
        default=None, description="Only recordings of this call."
    )
    types: list[RecordingEventType] | None = strawberry.field(
        default=None, description="Only these kinds of event."
    )

    def accepts(self) -> Callable[[events.RecordingEvent], bool] | None:
        """The test an event must pass to be queued (None: every event); BAD_USER_INPUT for
        an empty list or an empty ``callId``, which could never match."""
        for name, values in (("providers", self.providers), ("types", self.types)):
            if values is not None and not values:
                raise BadUserInputError(f"`{name}` must name at least one value (or be omitted)")
        if self.call_id is not None and not self.call_id.strip():
            raise BadUserInputError("`callId` must not be empty")
        providers = frozenset(self.providers) if self.providers is not None else None
        types = frozenset(self.types) if self.types is not None else None
        call_id = self.call_id
        if providers is None and types is None and call_id is None:
            return None

        def accepts(event: events.RecordingEvent) -> bool:
            return (
                (providers is None or event.recording.provider in providers)
                and (types is None or event.type in types)
                and (call_id is None or event.recording.call_id == call_id)
            )

        return accepts


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "Your tenant's recording events as they happen (scope recordings:read), over "
            "WebSocket at /graphql (graphql-transport-ws; authenticate in connection_init). "
            "Media links in an event are PROXY only."
        ),
        permission_classes=[ReadRecordings],
    )
    async def recording_events(
        self, info: strawberry.Info[Context, None], filter: RecordingEventFilter | None = None
    ) -> AsyncGenerator[RecordingEvent, None]:
        context = info.context
        accepts = filter.accepts() if filter is not None else None
        tenant = context.tenant.name
        bus = context.events
        subscription = bus.subscribe(tenant, accepts)
        active = SUBSCRIPTIONS_ACTIVE.labels(tenant)
        active.inc()
        try:
            async for delivery in subscription:
                yield RecordingEvent.from_delivery(delivery)
        finally:
            active.dec()
            bus.unsubscribe(subscription)
