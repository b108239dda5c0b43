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

The walk itself (``runs``) is shared by a page of ``recordings`` (``merge``: up to ``first``
items, at most ``MAX_ROUNDS`` rounds) and the export (``app.export``: every item, run by
run as each round's pages arrive, with no round limit). For the export, a lane may also
read *ahead* (``LaneOptions.ahead``): a task of its own walks the provider's pages one after
another into a queue of that many pages, so a long walk waits about one round trip per page
of its slowest provider, not one per page of every provider in turn, and never holds more
than the page in use, the queued ones and the one in flight. A lane may also bound each
page by its own deadline (``page_timeout``) and run a hook before every upstream request
(``before_page``: the export charges the tenant's rate limit there).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from app.errors import BadUserInputError, GatewayError, ProviderNotConfiguredError
from app.listing.cursors import DONE, START, CursorCodec, Position
from app.models import ListQuery, Provider, Recording, RecordingPage, RecordingStatus
from app.providers import RecordingProvider
from app.recordings import RecordingService
from app.resilience.deadline import request_deadline

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


MergeKey = tuple[int, str, str]


def merge_key(recording: Recording) -> MergeKey:
    """Newest first; ties by provider name, then id. A missing createdAt sorts last."""
    created = recording.created_at
    micros = (created - _EPOCH) // _MICROSECOND if created is not None else _OLDEST
    return (-micros, recording.provider.name, recording.id)


@dataclass(frozen=True)
class LaneOptions:
    """How a lane reads its pages. The defaults are a ``recordings`` page's: no read-ahead,
    the request's own deadline, nothing before each request."""

    #: Pages read ahead of the one in use and kept ready (0: each page read when needed).
    ahead: int = 0
    #: Seconds each page (with its retries) may take, from when it is requested; None: the
    #: deadline of the request being served, if any.
    page_timeout: float | None = None
    #: Awaited before every upstream request of the lane; raising a GatewayError fails it.
    before_page: Callable[[Provider], Awaitable[None]] | None = None


class Lane:
    """One provider's share of a listing: its position and the page it is consuming."""

    def __init__(
        self,
        adapter: RecordingProvider,
        position: Position,
        flt: ListFilter,
        size: int,
        options: LaneOptions = LaneOptions(),
    ) -> None:
        self.adapter = adapter
        self.provider = adapter.provider
        self.position = position
        self.error: GatewayError | None = None
        self._filter = flt
        self._size = size
        self._options = options
        # (index on its page, recording, merge key): the key worked out once per item.
        self._buffer: deque[tuple[int, Recording, MergeKey]] = deque()
        self._next_token: str | None = None
        self._reader: asyncio.Task[None] | None = None  # reads ahead into ``_ready``
        self._ready: asyncio.Queue[RecordingPage | Exception] | None = None

    @property
    def hungry(self) -> bool:
        """Live, with nothing buffered: it must fetch before any head can be compared."""
        return self.error is None and not self.position.done and not self._buffer

    @property
    def head(self) -> Recording | None:
        return self._buffer[0][1] if self._buffer else None

    @property
    def head_key(self) -> MergeKey | None:
        return self._buffer[0][2] if self._buffer else None

    async def load(self) -> None:
        """Fetch the page at the current position and buffer what is left of it."""
        position = self.position
        # Bird takes a size per request: re-reading a page must cover what was consumed.
        size = max(self._size, position.offset + 1)
        try:
            page = await self._page(position, size)
        except GatewayError as exc:
            self.error = exc
            return
        ids = [recording.id for recording in page.recordings]
        start = ids.index(position.last) + 1 if position.last in ids else position.offset
        self._next_token = page.next_token
        self._buffer = deque(
            (index, recording, merge_key(recording))
            for index, recording in enumerate(page.recordings)
            if index >= start and self._filter.matches(recording)
        )
        self._settle()

    def take(self) -> Recording:
        index, recording, _ = self._buffer.popleft()
        self.position = Position(self.position.token, index + 1, recording.id)
        self._settle()
        return recording

    def close(self) -> None:
        """Stop reading ahead (the walk has ended, or was abandoned)."""
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None

    async def _page(self, position: Position, size: int) -> RecordingPage:
        """The page at ``position``: read ahead, when the lane reads ahead and the position
        is the start of a page (it always is, but for a cursor's first page)."""
        if not self._options.ahead or position.offset or position.last is not None:
            return await self._fetch(position.token, size)
        if self._ready is None:
            self._ready = asyncio.Queue(maxsize=self._options.ahead)
            self._reader = asyncio.create_task(self._read_ahead(position.token, self._ready))
        found = await self._ready.get()
        if isinstance(found, Exception):
            raise found
        return found

    async def _read_ahead(
        self, token: str | None, ready: asyncio.Queue[RecordingPage | Exception]
    ) -> None:
        """Every page from ``token`` on, in order, into ``ready`` (waiting while it is full);
        a failure goes in as the last item: the lane raises it where it waits."""
        while True:
            try:
                page = await self._fetch(token, self._size)
            except Exception as exc:
                await ready.put(exc)
                return
            await ready.put(page)
            if page.next_token is None:
                return
            token = page.next_token

    async def _fetch(self, token: str | None, size: int) -> RecordingPage:
        options = self._options
        if options.before_page is not None:
            await options.before_page(self.provider)
        if options.page_timeout is None:
            return await self.adapter.list_page(self._filter.query, token, size)
        with request_deadline(options.page_timeout):
            return await self.adapter.list_page(self._filter.query, token, size)

    def _settle(self) -> None:
        # Nothing left that matches on this page: the position moves on to the next one.
        if not self._buffer:
            self.position = Position(self._next_token) if self._next_token else DONE


async def runs(
    lanes: list[Lane], max_rounds: int | None = None
) -> AsyncGenerator[Iterator[Recording]]:
    """The merged walk, one *run* at a time: a round of fetches (every hungry lane at once),
    then an iterator over the recordings that can be emitted, in merge order, before the
    next round is needed. Each recording is taken from its lane only as the iterator reaches
    it, so a caller that stops early leaves the lanes exactly after the last one it took.
    Ends when no lane has anything left, or when a round is needed and ``max_rounds`` were
    run. A failed lane sits the rest of the walk out (``Lane.error``)."""
    rounds = 0
    try:
        while True:
            hungry = [lane for lane in lanes if lane.hungry]
            if hungry:
                if rounds == max_rounds:
                    return
                rounds += 1
                await asyncio.gather(*(lane.load() for lane in hungry))
                continue
            if all(lane.head is None for lane in lanes):
                return
            yield _emit(lanes)
    finally:
        for lane in lanes:
            lane.close()


def _emit(lanes: list[Lane]) -> Iterator[Recording]:
    """The newest head, then the next, while no lane must fetch (see ``runs``)."""
    while True:
        newest: Lane | None = None
        newest_key: MergeKey | None = None
        for lane in lanes:
            if lane.hungry:
                return
            key = lane.head_key
            if key is not None and (newest_key is None or key < newest_key):
                newest, newest_key = lane, key
        if newest is None:
            return
        yield newest.take()


async def merge(lanes: list[Lane], first: int) -> list[tuple[Recording, Positions]]:
    """Up to ``first`` recordings in merge order, each with the positions right after it."""
    taken: list[tuple[Recording, Positions]] = []
    if first < 1:
        return taken
    async with contextlib.aclosing(runs(lanes, MAX_ROUNDS)) as walk:
        async for run in walk:
            for recording in run:
                taken.append((recording, snapshot(lanes)))
                if len(taken) == first:
                    return taken
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
