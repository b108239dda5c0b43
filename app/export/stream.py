"""The export's walk: every recording of the filter, in ``recordings``' order, run by run.

It is ``app.listing.merge.runs`` (the one merged walk; not a copy), with lanes that:

- **read ahead** (``LaneOptions.ahead``): each provider's pages are read one after another by a
  task of their own while earlier pages are written out, so the export waits about one round
  trip per page of its slowest provider instead of one per page of every provider in turn. At
  most ``AHEAD + 2`` pages per provider are held (the one being written, ``AHEAD`` ready, one
  in flight): memory stays flat however large the export.
- **bound each page by its own deadline** (``GATEWAY_REQUEST_TIMEOUT``, retries included):
  a GraphQL request must answer within that time, but an export of a year runs for as long as
  its pages keep coming; what must not happen is one page hanging forever. The client ends an
  export it no longer wants by hanging up (the pages in flight are then cancelled).
- **charge the tenant's rate limit one unit per upstream request** (the limit's unit is an
  upstream request; ``app.access.ratelimit``), before it is made: every provider's first page
  at once, up front, then each page as it is requested. An export the budget cannot start is
  refused (429); one that runs out midway fails as a provider failure would (RATE_LIMITED).

Pages are requested at ``GATEWAY_MAX_PAGE_SIZE`` (default 100; each adapter caps it at its
provider's own maximum, Bird's 99), as ``recordings(first:)`` at its largest.

The listed recordings are not written to the recording cache, as ``recordings`` does: an
export reads thousands of recordings that nobody asked for one by one, and remembering them
would evict what interactive clients do read (and, on Redis, cost a write per row).

Any failure stops the walk before another row comes out (``ExportFailedError``): a file with a
provider's rows missing must never look complete.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

from app.access.ratelimit import RateLimiter
from app.errors import GatewayError, RateLimitExceededError
from app.export.rows import Row, row
from app.listing.cursors import START
from app.listing.merge import Lane, LaneOptions, ListFilter, runs, select_adapters
from app.metrics import RATE_LIMITED
from app.models import Provider
from app.tenants import Tenant

#: Pages each provider's lane keeps ready beyond the one being written (one more is in flight).
#: Measured on the walk alone (tests/perf/test_export_perf.py): 10,000 recordings over three
#: providers at 50 ms a page take 3.0x the floor with none and 1.02x with 1 or more; with one
#: provider holding fewer (3,168 of 3,334), 1.13x with 1 and 1.07x with 2: 2 leaves slack.
AHEAD = 2


class ExportFailedError(Exception):
    """The export stopped on ``error`` after ``rows`` rows had been produced."""

    def __init__(self, error: GatewayError, rows: int) -> None:
        super().__init__(error.message)
        self.error = error
        self.rows = rows


class Export:
    """One export of ``tenant``'s recordings matching ``flt``. Building it checks that every
    named provider is configured (PROVIDER_NOT_CONFIGURED), before any upstream request."""

    def __init__(
        self,
        tenant: Tenant,
        flt: ListFilter,
        *,
        limiter: RateLimiter,
        page_size: int,
        page_timeout: float,
    ) -> None:
        adapters, errors = select_adapters(tenant.recordings, flt)
        if errors:
            raise errors[0]
        self.tenant = tenant
        self.rows = 0
        self._limiter = limiter
        self._paid: set[Provider] = set()  # first pages paid for up front
        options = LaneOptions(ahead=AHEAD, page_timeout=page_timeout, before_page=self._charge)
        self._lanes = [
            Lane(adapter, START, flt, page_size, options)
            for adapter in adapters.values()
            if not flt.empty
        ]

    async def batches(self) -> AsyncGenerator[list[Row]]:
        """The rows, a run at a time (what can be written before the next page is needed);
        ``ExportFailedError`` as soon as any page fails, before any later row."""
        try:  # every provider's first page at once: read-ahead cannot spend them first
            await self._charge_units(len(self._lanes), "its first pages")
        except RateLimitExceededError as exc:
            raise ExportFailedError(exc, 0) from None
        self._paid = {lane.provider for lane in self._lanes}
        async with contextlib.aclosing(runs(self._lanes)) as walk:
            async for run in walk:
                self._check()
                batch = [row(recording) for recording in run]
                self.rows += len(batch)
                yield batch
            self._check()

    def _check(self) -> None:
        for lane in self._lanes:
            if lane.error is not None:
                raise ExportFailedError(lane.error, self.rows)

    async def _charge(self, provider: Provider) -> None:
        if provider in self._paid:
            self._paid.discard(provider)
            return
        await self._charge_units(1, f"its next page from {provider.name}")

    async def _charge_units(self, units: int, what: str) -> None:
        rate = self.tenant.rate_limit
        if rate is None or units == 0:
            return
        decision = await self._limiter.hit(self.tenant.name, rate, units)
        if not decision.allowed:
            RATE_LIMITED.labels(self.tenant.name).inc()
            raise RateLimitExceededError(
                f"rate limit reached: the export needs {units} unit(s) for {what}; "
                f"retry in {decision.retry_after} s",
                retry_after=decision.retry_after,
            )
