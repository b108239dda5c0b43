"""Groups and their figures: what one ``recordingStats`` row says, summed one recording at a time.

A group is named by a ``StatsKey``: the value of each grouped dimension, None for the others.
Periods (``DAY``, ``WEEK``, ``MONTH``) are calendar periods of ``createdAt`` in the request's time
zone: the local date, the Monday of its ISO week, ``"YYYY-MM"``. A recording without
``createdAt`` has no period (null there).

Figures are exact: counts and seconds are integers; cost is a ``Decimal`` sum per currency
(never a float), each ``Money`` as the schema's ``price`` presents it (the positive amount
charged). A recording without a duration (still recording at Twilio) counts in
``unknown_duration_count`` and not in the average; one without a price (Bird gives none, and
recordings not yet billed) in ``unknown_cost_count``.

Memory holds one ``Totals`` per group, never the recordings: a walk adds each recording as its
page arrives (``Aggregator.add``) and lets it go.

Row order (stable, documented in the schema): by each grouped dimension in the order of
``Dimension``: providers, statuses and directions by name, accounts and sources as strings,
periods chronologically; a null value after every other.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.errors import BadUserInputError
from app.models import CallDirection, Money, Provider, Recording, RecordingStatus

#: IANA names are short ("America/Argentina/ComodRivadavia" is among the longest).
MAX_ZONE_LENGTH = 64


class Dimension(enum.Enum):
    """What rows can be grouped by; the declaration order is the rows' sort order."""

    PROVIDER = "provider"
    ACCOUNT = "account"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    STATUS = "status"
    DIRECTION = "direction"
    SOURCE = "source"


@dataclass(frozen=True, slots=True)
class StatsKey:
    """The grouped dimensions' values of one row; None where not grouped (or unknown)."""

    provider: Provider | None = None
    account: str | None = None
    day: date | None = None
    week: date | None = None
    month: str | None = None
    status: RecordingStatus | None = None
    direction: CallDirection | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One group's figures (see the module docstring)."""

    key: StatsKey
    count: int
    total_duration_seconds: int
    average_duration_seconds: float | None
    unknown_duration_count: int
    cost: tuple[Money, ...]
    unknown_cost_count: int


@dataclass(slots=True)
class Totals:
    """A group's running sums."""

    count: int = 0
    duration: int = 0
    known_durations: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)
    unknown_cost: int = 0

    def add(self, recording: Recording) -> None:
        self.count += 1
        if recording.duration_seconds is not None:
            self.duration += recording.duration_seconds
            self.known_durations += 1
        price = recording.price
        if price is None:
            self.unknown_cost += 1
        else:
            self.cost[price.currency] = self.cost.get(price.currency, Decimal(0)) + price.amount

    def merge(self, other: Totals) -> None:
        self.count += other.count
        self.duration += other.duration
        self.known_durations += other.known_durations
        for currency, amount in other.cost.items():
            self.cost[currency] = self.cost.get(currency, Decimal(0)) + amount
        self.unknown_cost += other.unknown_cost

    def row(self, key: StatsKey) -> StatsRow:
        known = self.known_durations
        return StatsRow(
            key=key,
            count=self.count,
            total_duration_seconds=self.duration,
            average_duration_seconds=self.duration / known if known else None,
            unknown_duration_count=self.count - known,
            cost=tuple(Money(self.cost[c], c) for c in sorted(self.cost)),
            unknown_cost_count=self.unknown_cost,
        )


def time_zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``, or BAD_USER_INPUT (checked before anything is asked upstream)."""
    if not name or len(name) > MAX_ZONE_LENGTH:
        raise BadUserInputError(f"`timeZone` must be an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a name at all ("../x")
        raise BadUserInputError(
            f"`timeZone` must be an IANA time zone name (e.g. Europe/Lisbon), got {name!r}"
        ) from None


#: Each dimension's value for a recording, given the local date of its ``createdAt`` (None
#: without one, or when no period is grouped).
_VALUES: dict[Dimension, Callable[[Recording, date | None], Any]] = {
    Dimension.PROVIDER: lambda recording, _: recording.provider,
    Dimension.ACCOUNT: lambda recording, _: recording.account_id,
    Dimension.DAY: lambda _, local: local,
    Dimension.WEEK: lambda _, local: (
        None if local is None else local - timedelta(days=local.weekday())
    ),
    Dimension.MONTH: lambda _, local: (
        None if local is None else f"{local.year:04d}-{local.month:02d}"
    ),
    Dimension.STATUS: lambda recording, _: recording.status,
    Dimension.DIRECTION: lambda recording, _: recording.direction,
    Dimension.SOURCE: lambda recording, _: recording.source,
}
_PERIODS = frozenset({Dimension.DAY, Dimension.WEEK, Dimension.MONTH})


class Aggregator:
    """Totals per group for one set of groupings and one time zone.

    ``add`` runs once per recording walked (10,000 for 10,000 recordings), so a group is
    looked up by the plain tuple of its grouped dimensions' values, each worked out by a
    function chosen once per aggregator; the ``StatsKey`` is built once per group, for the
    rows."""

    def __init__(self, groupings: Iterable[Dimension], zone: ZoneInfo) -> None:
        self.groupings = frozenset(groupings)
        self._zone = zone
        self._periods = bool(self.groupings & _PERIODS)
        #: The grouped dimensions in ``Dimension``'s order, and how to get each one's value.
        self._dimensions = tuple(d for d in Dimension if d in self.groupings)
        self._values = tuple(_VALUES[d] for d in self._dimensions)
        self._groups: dict[tuple[Any, ...], Totals] = {}

    def add(self, recording: Recording) -> None:
        key = self._key(recording)
        totals = self._groups.get(key)
        if totals is None:
            totals = self._groups[key] = Totals()
        totals.add(recording)

    def merge(self, other: Aggregator) -> None:
        """Add ``other``'s totals (an aggregator for the same groupings and zone)."""
        for key, totals in other._groups.items():
            mine = self._groups.get(key)
            if mine is None:
                mine = self._groups[key] = Totals()
            mine.merge(totals)

    def key(self, recording: Recording) -> StatsKey:
        """The group ``recording`` counts in."""
        return self._stats_key(self._key(recording))

    def rows(self) -> list[StatsRow]:
        """One row per group, in the documented order; without groupings, always one row
        (zeros when nothing matched), as SQL's aggregates without GROUP BY."""
        if not self.groupings and not self._groups:
            return [Totals().row(StatsKey())]
        keyed = [(self._stats_key(key), totals) for key, totals in self._groups.items()]
        keyed.sort(key=lambda item: _order(item[0]))
        return [totals.row(key) for key, totals in keyed]

    def _key(self, recording: Recording) -> tuple[Any, ...]:
        created = recording.created_at
        local = (
            created.astimezone(self._zone).date() if self._periods and created is not None else None
        )
        return tuple(value(recording, local) for value in self._values)

    def _stats_key(self, key: tuple[Any, ...]) -> StatsKey:
        return StatsKey(**{d.value: value for d, value in zip(self._dimensions, key, strict=True)})


def _order(key: StatsKey) -> tuple[tuple[bool, Any], ...]:
    return tuple(_place(getattr(key, d.value)) for d in Dimension)


def _place(value: Any) -> tuple[bool, Any]:
    """Nulls last; enums by name, dates and strings as themselves."""
    if value is None:
        return (True, "")
    if isinstance(value, enum.Enum):
        return (False, value.name)
    if isinstance(value, date):
        return (False, value.isoformat())
    return (False, value)
