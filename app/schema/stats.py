"""``recordingStats``: exact aggregates over a ``RecordingFilter`` (``app.stats``), as GraphQL."""

from __future__ import annotations

from datetime import date

import strawberry

from app.models import CallDirection, Provider, RecordingStatus
from app.schema.connection import RecordingFilter
from app.schema.context import Context
from app.schema.errors import report
from app.schema.types import Money
from app.stats import aggregate
from app.stats.aggregate import Dimension
from app.stats.walk import recording_stats

strawberry.enum(
    Dimension,
    name="StatsDimension",
    description=(
        "What recordingStats groups by. DAY, WEEK and MONTH are calendar periods of createdAt "
        "in the request's timeZone."
    ),
)

HELP = (
    "Exact figures over every recording `filter` selects (the filter of `recordings`), one row "
    "per group of `groupBy` (none: one row for everything, zeros if nothing matched). "
    "Periods are calendar days, ISO weeks (Monday to Sunday) and months in `timeZone`, an IANA "
    "name (e.g. Europe/Lisbon; else BAD_USER_INPUT before any provider is asked). Every "
    "selected provider's listing is read to its end, concurrently: the request's cost is "
    "GATEWAY_STATS_MAX_PAGES (default 100) pages per selected provider, and a provider with "
    "more pages fails with STATS_TOO_LARGE. A provider that fails is left out of every row "
    "entirely and adds an error naming it (extensions.provider) at this field's path: the "
    "rows still returned then cover exactly the providers that answered in full. Rows are "
    "sorted by the grouped dimensions in the order PROVIDER, ACCOUNT, DAY, WEEK, MONTH, "
    "STATUS, DIRECTION, SOURCE: providers, statuses and directions by name, accounts and "
    "sources alphabetically, periods oldest first, a null value last. A closed period "
    "(createdBefore more than GATEWAY_CACHE_TTL_ACTIVE seconds ago, every recording in it "
    "terminal, no provider failing) is cached for GATEWAY_CACHE_TTL: asking again reads no "
    "provider."
)


@strawberry.type(description="The value of each grouped dimension of a row; null if not grouped.")
class StatsKey:
    provider: Provider | None
    account: str | None = strawberry.field(description="accountId of the recordings.")
    day: date | None = strawberry.field(description="The local date, in timeZone.")
    week: date | None = strawberry.field(description="The Monday of the ISO week, in timeZone.")
    month: str | None = strawberry.field(description='The month in timeZone, e.g. "2026-11".')
    status: RecordingStatus | None
    direction: CallDirection | None = strawberry.field(description="Known for Bird only.")
    source: str | None

    @classmethod
    def from_model(cls, key: aggregate.StatsKey) -> StatsKey:
        return cls(
            provider=key.provider,
            account=key.account,
            day=key.day,
            week=key.week,
            month=key.month,
            status=key.status,
            direction=key.direction,
            source=key.source,
        )


@strawberry.type(description="The figures of one group of recordings.")
class RecordingStatsRow:
    key: StatsKey
    count: int = strawberry.field(description="Recordings in the group.")
    total_duration_seconds: int = strawberry.field(
        description="Sum of the known durations (seconds)."
    )
    average_duration_seconds: float | None = strawberry.field(
        description="Mean of the known durations; null when none is known."
    )
    unknown_duration_count: int = strawberry.field(
        description="Recordings whose duration is not known yet (e.g. still recording)."
    )
    cost: list[Money] = strawberry.field(
        description=(
            "The amounts charged, summed exactly per currency (sorted by currency), as `price` "
            "presents them."
        )
    )
    unknown_cost_count: int = strawberry.field(
        description="Recordings without a price (Bird gives none; others until billed)."
    )

    @classmethod
    def from_model(cls, row: aggregate.StatsRow) -> RecordingStatsRow:
        return cls(
            key=StatsKey.from_model(row.key),
            count=row.count,
            total_duration_seconds=row.total_duration_seconds,
            average_duration_seconds=row.average_duration_seconds,
            unknown_duration_count=row.unknown_duration_count,
            cost=[Money.from_model(money) for money in row.cost],
            unknown_cost_count=row.unknown_cost_count,
        )


async def resolve(
    info: strawberry.Info[Context, None],
    flt: RecordingFilter | None,
    group_by: list[Dimension],
    time_zone: str,
) -> list[RecordingStatsRow]:
    """The rows of ``recordingStats``; a failed provider's error is reported beside them."""
    context = info.context
    model = (flt or RecordingFilter()).to_model()
    zone = aggregate.time_zone(time_zone)  # both checked before any provider is asked
    settings = context.settings
    stats = await recording_stats(
        context.recordings,
        model,
        group_by,
        zone,
        max_pages=settings.stats_max_pages,
        ttl_active=settings.cache.ttl_active,
        ttl=settings.cache.ttl,
    )
    if stats.kept is not None:  # a closed period's: unchanged while the gateway keeps it
        context.freshness.kept(*stats.kept)
    else:  # what the providers list right now, as a listing
        context.freshness.no_store("statistics of an open period")
    for error in stats.errors:
        report(info, error)
    return [RecordingStatsRow.from_model(row) for row in stats.rows]
