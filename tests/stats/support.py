"""What ``recordingStats`` should answer, worked out by brute force from the sandbox's own records.

Nothing here calls the gateway's code: each record's figures are read the way each provider's
API documents them (restated below), then grouped and summed in the plainest way.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig, SandboxRecording
from app.settings import Settings
from tests.listing.support import Criteria, listed, status_of
from tests.support import graphql, sandbox_env

#: Recordings per provider: more than a page of Bird's (99), for the page bounds.
PER_PROVIDER = 150

STATS_QUERY = """
query Stats($filter: RecordingFilter, $groupBy: [StatsDimension!]!, $timeZone: String!) {
  recordingStats(filter: $filter, groupBy: $groupBy, timeZone: $timeZone) {
    key { provider account day week month status direction source }
    count totalDurationSeconds averageDurationSeconds unknownDurationCount
    cost { amount currency } unknownCostCount
  }
}
"""

#: The dimensions, in the documented order of the rows.
DIMENSIONS = ("PROVIDER", "ACCOUNT", "DAY", "WEEK", "MONTH", "STATUS", "DIRECTION", "SOURCE")

#: Twilio's documented ``source`` values; SignalWire spells some differently ("OutBoundApi",
#: "StartConferenceRecording"): the gateway gives Twilio's casing.
TWILIO_SOURCES = (
    "DialVerb",
    "Conference",
    "OutboundAPI",
    "Trunking",
    "RecordVerb",
    "StartCallRecordingAPI",
    "StartConferenceRecordingAPI",
)
BIRD_DIRECTIONS = {"incoming": "INBOUND", "outgoing": "OUTBOUND"}
TERMINAL = frozenset({"COMPLETED", "ABSENT", "FAILED", "DELETED"})


def twilio_source(source: str) -> str:
    plain = source.lower().removesuffix("api")
    return next(name for name in TWILIO_SOURCES if name.lower().removesuffix("api") == plain)


def duration(record: SandboxRecording) -> int | None:
    """Twilio says ``"-1"`` while recording (unknown); SignalWire and Bird say 0."""
    if record.running:
        return None if record.provider == "twilio" else 0
    return record.duration


def price(record: SandboxRecording) -> tuple[str, Decimal] | None:
    """(currency, amount charged): Twilio and SignalWire give negative strings; Bird none."""
    if record.provider == "bird" or record.price is None:
        return None
    return record.price_unit.upper(), abs(record.price)


def key_of(record: SandboxRecording, group_by: tuple[str, ...], zone: ZoneInfo) -> dict[str, Any]:
    local: date = record.created.astimezone(zone).date()
    values: dict[str, Any] = {
        "provider": Provider(record.provider).name,
        "account": record.account,
        "day": local.isoformat(),
        "week": (local - timedelta(days=local.isoweekday() - 1)).isoformat(),
        "month": local.strftime("%Y-%m"),
        "status": status_of(record).name,
        "direction": BIRD_DIRECTIONS[record.direction] if record.provider == "bird" else None,
        "source": record.origin if record.provider == "bird" else twilio_source(record.source),
    }
    return {name: values[name] if name.upper() in group_by else None for name in values}


@dataclass
class Sums:
    count: int = 0
    seconds: int = 0
    known: int = 0
    unknown_cost: int = 0

    def __post_init__(self) -> None:
        self.cost: dict[str, Decimal] = defaultdict(Decimal)


def expected_rows(
    sandbox: Sandbox,
    criteria: Criteria,
    group_by: tuple[str, ...],
    zone: str,
    without: frozenset[Provider] = frozenset(),
) -> list[dict[str, Any]]:
    """The rows the gateway must answer, in the documented order, amounts as Decimal."""
    tz = ZoneInfo(zone)
    groups: dict[tuple[Any, ...], tuple[dict[str, Any], Sums]] = {}
    for record in sandbox.dataset:
        if not listed(record) or not criteria.accepts(record):
            continue
        if Provider(record.provider) in without:
            continue
        key = key_of(record, group_by, tz)
        _, sums = groups.setdefault(tuple(key.values()), (key, Sums()))
        sums.count += 1
        seconds = duration(record)
        if seconds is not None:
            sums.seconds += seconds
            sums.known += 1
        charged = price(record)
        if charged is None:
            sums.unknown_cost += 1
        else:
            sums.cost[charged[0]] += charged[1]
    if not group_by and not groups:
        groups[()] = ({name.lower(): None for name in DIMENSIONS}, Sums())
    rows: list[dict[str, Any]] = [
        {
            "key": key,
            "count": sums.count,
            "totalDurationSeconds": sums.seconds,
            "averageDurationSeconds": sums.seconds / sums.known if sums.known else None,
            "unknownDurationCount": sums.count - sums.known,
            "cost": [(c, sums.cost[c]) for c in sorted(sums.cost)],
            "unknownCostCount": sums.unknown_cost,
        }
        for key, sums in groups.values()
    ]
    rows.sort(key=lambda row: [(v is None, v or "") for v in dict(row["key"]).values()])
    return rows


def answered_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The gateway's rows with each amount read as an exact Decimal."""
    return [
        {**row, "cost": [(m["currency"], Decimal(m["amount"])) for m in row["cost"]]}
        for row in rows
    ]


def env(config: SandboxConfig, **extra: str) -> Settings:
    return Settings.from_env(sandbox_env(config) | extra)


async def stats(
    client: httpx.AsyncClient,
    found: Criteria | None = None,
    group_by: tuple[str, ...] = (),
    zone: str = "UTC",
) -> dict[str, Any]:
    variables = {
        "filter": None if found is None else found.variable(),
        "groupBy": list(group_by),
        "timeZone": zone,
    }
    return await graphql(client, STATS_QUERY, variables)


def terminal_run(sandbox: Sandbox, older_than: datetime) -> tuple[datetime, datetime]:
    """Bounds [after, before) of the longest run of creation instants, each holding only
    terminal listed recordings, before ``older_than``: a closed period of the data set."""
    instants: dict[datetime, bool] = {}
    for record in sandbox.dataset:
        if listed(record) and record.created < older_than:
            terminal = status_name(record) in TERMINAL
            instants[record.created] = instants.get(record.created, True) and terminal
    best: list[datetime] = []
    run: list[datetime] = []
    for instant in sorted(instants):
        if instants[instant]:
            run.append(instant)
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    assert len(best) >= 3, "the data set has no closed period to ask about"
    return best[0], best[-1] + timedelta(microseconds=1)


def status_name(record: SandboxRecording) -> str:
    return status_of(record).name


def providers_in(errors: list[dict[str, Any]]) -> list[str]:
    return [e["extensions"].get("provider") for e in errors]
