"""The export's walk: every recording of the filter, in ``recordings``' order, run by run.

It is ``app.listing.merge.runs`` (the one merged walk; not a copy), with lanes that:

- **read one page ahead** (``LaneOptions.ahead``): while a page is being written out, the next
  is already on its way, so the export waits about one round trip per page of its slowest
  provider instead of one per page of every provider in turn. At most two pages per provider
  are held (the one being written and the one ahead): memory stays flat however large the
  export.
- **bound each page by its own deadline** (``GATEWAY_REQUEST_TIMEOUT``, retries included):
  a GraphQL request must answer within that time, but an export of a year runs for as long as
  its pages keep coming; what must not happen is one page hanging forever. The client ends an
  export it no longer wants by hanging up (the pages in flight are then cancelled).
- **charge the tenant's rate limit one unit per upstream request** (the limit's unit is an
  upstream request; ``app.access.ratelimit``), before it is made. An export the budget cannot
  start is refused (429); one that runs out midway fails as any provider failure would.

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
from app.listing.merge import Lane, LaneOptions, ListFilter, runs, select
from app.metrics import RATE_LIMITED
from app.models import Provider
from app.tenants import Tenant


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
        adapters, errors = select(tenant.recordings, flt)
        if errors:
            raise errors[0]
        self.tenant = tenant
        self.rows = 0
        self._limiter = limiter
        options = LaneOptions(ahead=True, page_timeout=page_timeout, before_page=self._charge)
        self._lanes = [
            Lane(adapter, START, flt, page_size, options)
            for adapter in adapters.values()
            if not flt.empty
        ]

    async def batches(self) -> AsyncGenerator[list[Row]]:
        """The rows, a run at a time (what can be written before the next page is needed);
        ``ExportFailedError`` as soon as any page fails, before any later row."""
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
        rate = self.tenant.rate_limit
        if rate is None:
            return
        decision = await self._limiter.hit(self.tenant.name, rate, 1)
        if not decision.allowed:
            RATE_LIMITED.labels(self.tenant.name).inc()
            raise RateLimitExceededError(
                f"rate limit reached: the export's next page from {provider.name} needs 1 unit; "
                f"retry in {decision.retry_after} s",
                retry_after=decision.retry_after,
            )
