"""``recordingStats``: every selected provider's listing read to its end, summed as it arrives.

**One walk.** Each provider is a ``Lane`` of the listing (``app.listing.merge``), the very
objects ``recordings`` pages with: the same adapter selection (an unconfigured provider named
in the filter is an error), the same push-down and the same exact filter on what arrives. The
lanes run concurrently, one task each; within a lane pages follow one another (each page's
token comes with the page before). Nothing is merged into an order: figures do not depend on
it. Each page's recordings are added to the lane's own totals as the page arrives and let go,
so memory holds one ``Totals`` per group, never the recordings.

**Page size**: the providers' maximum (``PAGE_SIZE``, clamped by each adapter to its own:
1000 at Twilio and SignalWire, 99 at Bird), for the fewest round trips whatever the providers'
shares (3,400 Twilio recordings: 4 round trips, where the export's pages of 100 take 34) and
the widest reach for ``max_pages`` (the pages the request's cost counts). The export's pages
of 100, read ahead, were measured too (tests/perf/README.md): they spread the providers' work
over Bird's chain and gain 2-5% when Bird's 99-record pages are the longest chain anyway, and
lose 5x on a Twilio-only walk. Read-ahead with pages of 1000 gained nothing measurable: no
lane reads ahead.

**Bounds.** Time: every page is a provider call under the request's deadline
(``app.resilience.deadline``); a lane still walking then fails with PROVIDER_UNAVAILABLE.
Work: at most ``max_pages`` pages per provider (``GATEWAY_STATS_MAX_PAGES``), the figure the
request's cost was estimated from (``app.schema.cost``); a provider with more is not read
further and fails with STATS_TOO_LARGE.

**Failures.** A provider that fails, however far it got, is left out of the figures
*entirely* (its lane's totals are dropped), and its error is returned: the rows then cover
exactly the providers that answered in full, never a silently partial provider.

**Closed periods are cached.** When the filter's ``createdBefore`` is older than the active
TTL (``GATEWAY_CACHE_TTL_ACTIVE``), every recording of the period (whatever ``statuses`` says:
the lanes read them all, the status filter is applied here) is terminal, and no provider
failed, nothing in the answer can still change but by a deletion: the rows are kept in the
recording cache's backend (memory or Redis) for the terminal TTL (``GATEWAY_CACHE_TTL``), under
a key of the tenant and the request (``RecordingCache.stats_key``). Asking again costs no
upstream request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from zoneinfo import ZoneInfo

import msgspec

from app.errors import GatewayError, StatsTooLargeError
from app.listing.cursors import DONE, START
from app.listing.merge import Lane, ListFilter, select_adapters
from app.recordings import RecordingService
from app.stats.aggregate import Aggregator, Dimension, StatsRow

logger = logging.getLogger("app.stats")

#: Asked of every provider; each adapter clamps it to the provider's maximum.
PAGE_SIZE = 1000


@dataclass
class Stats:
    """The rows, the providers' errors (their figures are not in the rows), and, for a closed
    period's, until when (unix seconds) the cache keeps them and under which key."""

    rows: list[StatsRow]
    errors: list[GatewayError] = field(default_factory=list)
    kept: tuple[float, str] | None = None


class _Kept(msgspec.Struct, forbid_unknown_fields=True):
    """A cache entry: the rows and when the entry expires. JSON, never pickle; amounts as
    strings (exact)."""

    expires: float
    rows: list[StatsRow]


_ENCODER = msgspec.json.Encoder(decimal_format="string")
_DECODER = msgspec.json.Decoder(_Kept)


@dataclass
class _LaneResult:
    totals: Aggregator
    terminal: bool
    error: GatewayError | None


async def recording_stats(
    service: RecordingService,
    flt: ListFilter,
    groupings: Iterable[Dimension],
    zone: ZoneInfo,
    *,
    max_pages: int,
    ttl_active: int,
    ttl: int,
    clock: Callable[[], float] = time.time,
) -> Stats:
    """The stats of ``flt`` grouped by ``groupings`` in ``zone``: from the cache when the
    period is closed and they were kept, else walked (and kept if the period is closed)."""
    groupings = frozenset(groupings)
    now = clock()
    key = _key(service, flt, groupings, zone) if _ended(flt, ttl_active, now) else None
    if key is not None:
        text = await service.cache.get_text(key)
        if text is not None:
            try:
                kept = _DECODER.decode(text)
            except msgspec.DecodeError as exc:
                logger.warning("ignoring unreadable cached stats (%s)", exc)
            else:
                if kept.expires > now:
                    return Stats(kept.rows, kept=(kept.expires, key))
    stats, terminal = await walk(service, flt, groupings, zone, max_pages=max_pages)
    if key is not None and terminal and not stats.errors:
        expires = now + ttl
        entry = _ENCODER.encode(_Kept(expires, stats.rows)).decode()
        if await service.cache.put_text(key, entry, ttl):
            stats.kept = (expires, key)
    return stats


async def walk(
    service: RecordingService,
    flt: ListFilter,
    groupings: Iterable[Dimension],
    zone: ZoneInfo,
    *,
    max_pages: int,
) -> tuple[Stats, bool]:
    """Walk every selected provider to its end; the stats and whether every recording read
    (before the status filter) was terminal."""
    adapters, errors = select_adapters(service, flt)
    # Every recording of the period is read, so that whether all are terminal is known; the
    # statuses are filtered in ``_walk_lane`` (no provider applies them anyway).
    everything = replace(flt, statuses=None)
    lanes = [
        Lane(adapter, DONE if flt.empty else START, everything, PAGE_SIZE)
        for adapter in adapters.values()
    ]
    results = await asyncio.gather(
        *(_walk_lane(lane, flt, Aggregator(groupings, zone), max_pages) for lane in lanes)
    )
    total = Aggregator(groupings, zone)
    terminal = True
    for result in results:
        if result.error is not None:
            errors.append(result.error)
        else:
            total.merge(result.totals)
            terminal = terminal and result.terminal
    return Stats(total.rows(), errors), terminal


async def _walk_lane(
    lane: Lane, flt: ListFilter, totals: Aggregator, max_pages: int
) -> _LaneResult:
    statuses = flt.statuses
    terminal = True
    pages = 0
    while lane.hungry:
        if pages == max_pages:
            error = StatsTooLargeError(
                f"{lane.provider.name} has more than {max_pages} pages of recordings for this "
                "filter (GATEWAY_STATS_MAX_PAGES): narrow the filter, e.g. its dates",
                provider=lane.provider,
                max_pages=max_pages,
            )
            return _LaneResult(totals, terminal, error)
        pages += 1
        await lane.load()
        while lane.head is not None:
            recording = lane.take()
            terminal = terminal and recording.status.is_terminal
            if statuses is None or recording.status in statuses:
                totals.add(recording)
    return _LaneResult(totals, terminal, lane.error)


def _ended(flt: ListFilter, ttl_active: int, now: float) -> bool:
    """Whether the filter's period ended more than the active TTL ago (else it is open)."""
    before = flt.query.created_before
    return before is not None and before.timestamp() <= now - ttl_active


def _key(
    service: RecordingService, flt: ListFilter, groupings: frozenset[Dimension], zone: ZoneInfo
) -> str:
    tenant = [service.scope(provider) for provider in service.configured]
    request = {
        "filter": flt.fingerprint(),
        "groupBy": sorted(d.value for d in groupings),
        "timeZone": zone.key,
    }
    return service.cache.stats_key(tenant, request)
