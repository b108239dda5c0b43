"""The ``recordings`` listing as a Relay-style connection, and its filter input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import strawberry

from app.errors import BadUserInputError
from app.listing import merge as listing
from app.listing.cursors import CursorCodec
from app.models import ListQuery, Provider, RecordingStatus
from app.schema.context import Context
from app.schema.errors import report
from app.schema.types import Recording

DEFAULT_PAGE_SIZE = 20


@strawberry.input(
    description=(
        "Which recordings to list; every field narrows the list. Dates are compared exactly "
        "by the gateway: createdAfter <= createdAt < createdBefore (a DateTime without a "
        "time zone is UTC)."
    )
)
class RecordingFilter:
    providers: list[Provider] | None = strawberry.field(
        default=None, description="Only these providers (default: every configured one)."
    )
    call_id: str | None = None
    conference_id: str | None = None
    created_after: datetime | None = strawberry.field(default=None, description="Inclusive.")
    created_before: datetime | None = strawberry.field(default=None, description="Exclusive.")
    statuses: list[RecordingStatus] | None = None

    def to_model(self) -> listing.ListFilter:
        if self.providers is not None and not self.providers:
            raise BadUserInputError("`providers` must name at least one provider (or be omitted)")
        for name, value in (("callId", self.call_id), ("conferenceId", self.conference_id)):
            if value is not None and not value.strip():
                raise BadUserInputError(f"`{name}` must not be empty")
        query = ListQuery(
            call_id=self.call_id,
            conference_id=self.conference_id,
            created_after=_utc(self.created_after),
            created_before=_utc(self.created_before),
        )
        return listing.ListFilter(
            providers=None if self.providers is None else frozenset(self.providers),
            query=query,
            statuses=None if self.statuses is None else frozenset(self.statuses),
        )


@strawberry.type(description="Where a page ends and whether more follows (Relay PageInfo).")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description=(
            "True while any provider may have more, including one that failed on this page "
            "(the end cursor retries it)."
        )
    )
    has_previous_page: bool = strawberry.field(description="Always false: paging is forward.")
    start_cursor: str | None
    end_cursor: str | None = strawberry.field(
        description=(
            "Pass as `after` for the next page. Set even when the page has no edges (a "
            "filter the providers cannot apply may leave a page empty before the end)."
        )
    )


@strawberry.type(description="One recording of a listing and the cursor right after it.")
class RecordingEdge:
    node: Recording
    _cursor: strawberry.Private[Callable[[], str]]

    @strawberry.field(description="Opaque; pass as `after` to resume right after this edge.")
    def cursor(self) -> str:
        return self._cursor()


@strawberry.type(description="A page of recordings from every selected provider, newest first.")
class RecordingConnection:
    edges: list[RecordingEdge]
    page_info: PageInfo

    @strawberry.field(description="The edges' nodes, for clients that need no cursors.")
    def nodes(self) -> list[Recording]:
        return [edge.node for edge in self.edges]


async def resolve(
    info: strawberry.Info[Context, None],
    first: int,
    after: str | None,
    flt: RecordingFilter | None,
) -> RecordingConnection:
    """The connection for ``recordings(first, after, filter)``; provider failures are reported."""
    context = info.context
    context.freshness.no_store("a listing")  # providers' listings change at any time
    codec = CursorCodec(context.signer, context.tenant.name)
    page = await listing.list_recordings(
        context.recordings,
        codec,
        (flt or RecordingFilter()).to_model(),
        first=first,
        after=after,
        max_page_size=context.settings.max_page_size,
    )
    for error in page.errors:
        report(info, error)

    def cursor(positions: listing.Positions) -> Callable[[], str]:
        return lambda: codec.encode(page.fingerprint, positions)

    edges = [
        RecordingEdge(node=Recording.from_model(recording), _cursor=cursor(positions))
        for recording, positions in page.items
    ]
    page_info = PageInfo(
        has_next_page=page.has_next,
        has_previous_page=False,
        start_cursor=edges[0].cursor() if edges else None,
        end_cursor=codec.encode(page.fingerprint, page.end),
    )
    return RecordingConnection(edges=edges, page_info=page_info)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
