"""One listing over many providers: filtered, merged newest first, resumable by cursor.

Each selected provider is a *lane*: its position (``app.listing.cursors.Position``), the items of
the upstream page it is consuming that pass the filter and are not yet emitted, and the
token of the page after it. A page of ``first`` is built by a k-way merge:

1. every live lane with nothing buffered fetches its next upstream page; all such lanes
   fetch at once (one *round*), and the gateway's exact filter is applied to what arrives;
2. once every live lane has a head, the newest head is emitted (``createdAt`` descending,
   then provider name, then id) and its lane's position moves past it. A lane that runs
   dry goes back to step 1 before anything else is compared: its next item may be newer
   than every other head.

Invariant: each lane's emitted items are a prefix of its filtered upstream stream, and the
cursor records exactly where that prefix ends, so walking to the end yields every matching
recording once. Pages come out in order as long as no provider fails.

A lane whose fetch fails reports its error and sits out the rest of the page with its
position unchanged: the next cursor retries it from the same token (its items then come
later than their ``createdAt`` order would put them, but still exactly once). At most
``MAX_ROUNDS`` rounds run per page, so a filter the providers cannot apply themselves
(``statuses``; a conference id at Bird) never drains an account in one request: the page
may then hold fewer than ``first`` items, even none, with ``hasNextPage`` true and an end
cursor that resumes after the pages already read.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.errors import BadUserInputError, GatewayError, ProviderNotConfiguredError
from app.listing.cursors import DONE, START, CursorCodec, Position
from app.models import ListQuery, Provider, Recording, RecordingStatus
from app.providers import RecordingProvider
from app.recordings import RecordingService

MAX_ROUNDS = 8
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = datetime.resolution
_OLDEST = -(2**62)

Positions = Mapping[Provider, Position]


@dataclass(frozen=True)
class ListFilter:
    """What to list. ``providers`` None means every configured provider."""

    providers: frozenset[Provider] | None = None
    query: ListQuery = field(default_factory=ListQuery)
    statuses: frozenset[RecordingStatus] | None = None

    @property
    def empty(self) -> bool:
        """True when the date range holds no instant at all."""
        after, before = self.query.created_after, self.query.created_before
        return after is not None and before is not None and after >= before

    def matches(self, recording: Recording) -> bool:
        """The exact filter: providers may return a superset of it."""
        query, created = self.query, recording.created_at
        if query.call_id is not None and recording.call_id != query.call_id:
            return False
        if query.conference_id is not None and recording.conference_id != query.conference_id:
            return False
        if query.created_after is not None and (created is None or created < query.created_after):
            return False
        if query.created_before is not None and (
            created is None or created >= query.created_before
        ):
            return False
        return self.statuses is None or recording.status in self.statuses

    def fingerprint(self) -> str:
        """Names the filter inside a cursor, so a cursor only resumes the listing it came from."""
        query = self.query
        canonical = {
            "providers": _values(self.providers),
            "callId": query.call_id,
            "conferenceId": query.conference_id,
            "after": _instant(query.created_after),
            "before": _instant(query.created_before),
            "statuses": _values(self.statuses),
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def merge_key(recording: Recording) -> tuple[int, str, str]:
    """Newest first; ties by provider name, then id. A missing createdAt sorts last."""
    created = recording.created_at
    micros = (created - _EPOCH) // _MICROSECOND if created is not None else _OLDEST
    return (-micros, recording.provider.name, recording.id)


class Lane:
    """One provider's share of a listing: its position and the page it is consuming."""

    def __init__(
        self, adapter: RecordingProvider, position: Position, flt: ListFilter, size: int
    ) -> None:
        self.adapter = adapter
        self.provider = adapter.provider
        self.position = position
        self.error: GatewayError | None = None
        self._filter = flt
        self._size = size
        self._buffer: deque[tuple[int, Recording]] = deque()
        self._next_token: str | None = None

    @property
    def hungry(self) -> bool:
        """Live, with nothing buffered: it must fetch before any head can be compared."""
        return self.error is None and not self.position.done and not self._buffer

    @property
    def head(self) -> Recording | None:
        return self._buffer[0][1] if self._buffer else None

    async def load(self) -> None:
        """Fetch the page at the current position and buffer what is left of it."""
        position = self.position
        # Bird takes a size per request: re-reading a page must cover what was consumed.
        size = max(self._size, position.offset + 1)
        try:
            page = await self.adapter.list_page(self._filter.query, position.token, size)
        except GatewayError as exc:
            self.error = exc
            return
        ids = [recording.id for recording in page.recordings]
        start = ids.index(position.last) + 1 if position.last in ids else position.offset
        self._next_token = page.next_token
        self._buffer = deque(
            (index, recording)
            for index, recording in enumerate(page.recordings)
            if index >= start and self._filter.matches(recording)
        )
        self._settle()

    def take(self) -> Recording:
        index, recording = self._buffer.popleft()
        self.position = Position(self.position.token, index + 1, recording.id)
        self._settle()
        return recording

    def _settle(self) -> None:
        # Nothing left that matches on this page: the position moves on to the next one.
        if not self._buffer:
            self.position = Position(self._next_token) if self._next_token else DONE


async def merge(lanes: list[Lane], first: int) -> list[tuple[Recording, Positions]]:
    """Up to ``first`` recordings in merge order, each with the positions right after it."""
    taken: list[tuple[Recording, Positions]] = []
    rounds = 0
    while len(taken) < first:
        hungry = [lane for lane in lanes if lane.hungry]
        if hungry:
            if rounds == MAX_ROUNDS:
                break
            rounds += 1
            await asyncio.gather(*(lane.load() for lane in hungry))
            continue
        heads = [(merge_key(lane.head), lane) for lane in lanes if lane.head is not None]
        if not heads:
            break
        _, newest = min(heads, key=lambda pair: pair[0])
        taken.append((newest.take(), snapshot(lanes)))
    return taken


def snapshot(lanes: list[Lane]) -> dict[Provider, Position]:
    return {lane.provider: lane.position for lane in lanes}


@dataclass
class Listing:
    """One page: recordings with the positions after each, and what the page ends on."""

    items: list[tuple[Recording, Positions]]
    end: Positions
    has_next: bool
    fingerprint: str
    errors: list[GatewayError] = field(default_factory=list)


async def list_recordings(
    service: RecordingService,
    codec: CursorCodec,
    flt: ListFilter,
    *,
    first: int,
    after: str | None,
    max_page_size: int,
) -> Listing:
    """A page of the merged listing; provider failures are in ``errors``, not raised."""
    if not 1 <= first <= max_page_size:
        raise BadUserInputError(f"`first` must be between 1 and {max_page_size}, got {first}")
    adapters, errors = select_adapters(service, flt)
    fingerprint = flt.fingerprint()
    positions = codec.decode(after, fingerprint, adapters) if after is not None else {}
    lanes = [
        Lane(adapter, DONE if flt.empty else positions.get(name, START), flt, first)
        for name, adapter in adapters.items()
    ]
    items = await merge(lanes, first)
    await service.remember(recording for recording, _ in items)
    errors += [lane.error for lane in lanes if lane.error is not None]
    has_next = any(not lane.position.done for lane in lanes)
    return Listing(items, snapshot(lanes), has_next, fingerprint, errors)


def select_adapters(
    service: RecordingService, flt: ListFilter
) -> tuple[dict[Provider, RecordingProvider], list[GatewayError]]:
    """The adapters to list from, and an error for each named provider that is not set up."""
    chosen = flt.providers
    names = service.configured if chosen is None else [p for p in Provider if p in chosen]
    adapters: dict[Provider, RecordingProvider] = {}
    errors: list[GatewayError] = []
    for name in names:
        try:
            adapters[name] = service.provider(name)
        except ProviderNotConfiguredError as exc:
            errors.append(exc)
    return adapters, errors


def _values(members: frozenset[Provider] | frozenset[RecordingStatus] | None) -> list[str] | None:
    return None if members is None else sorted(member.value for member in members)


def _instant(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment is not None else None
