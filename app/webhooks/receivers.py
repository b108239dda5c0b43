"""Who may push to the gateway, and the work their deliveries started.

``Webhooks`` is built once by the lifespan (``request.state.webhooks``): one ``Receiver``
per tenant and provider that has a webhook signing key (``webhook_signing_key`` of the
tenant's provider section; Twilio's defaults to its auth token). A provider without one has
no receiver: its URL answers 404, as an unknown tenant's does.

The work a delivery starts runs after its answer (a provider wants one within seconds, the
gateway gives it within milliseconds), as tasks tracked here: at most ``max_pending`` at once
(past it the receiver answers 503 and the provider retries later), each logged rather than
lost if it fails, and all given ``grace`` seconds to finish at shutdown, then cancelled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import Secret

from app.models import Provider
from app.outages import Outage
from app.providers import REGISTRY
from app.recordings import RecordingService
from app.settings import Settings
from app.tenants import Tenants
from app.webhooks.dedupe import Seen
from app.webhooks.work import Job

logger = logging.getLogger("app.webhooks")

#: Seconds the work in flight may take to finish when the gateway stops.
GRACE = 5.0


@dataclass(frozen=True)
class Receiver:
    """One tenant's receiver for one provider: the key its deliveries are signed with, and
    the recordings (the account) they are about."""

    tenant: str
    provider: Provider
    key: Secret
    recordings: RecordingService

    @property
    def account(self) -> str:
        """The provider account the tenant reads (AccountSid, project id, workspace id)."""
        return self.recordings.provider(self.provider).account_id


class Webhooks:
    """The receivers by provider and tenant, the claims of deliveries seen, the work going on."""

    def __init__(
        self,
        receivers: dict[tuple[Provider, str], Receiver],
        seen: Seen,
        *,
        max_pending: int = 1000,
        grace: float = GRACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._receivers = receivers
        self.seen = seen
        self.max_pending = max_pending
        self.grace = grace
        #: Wall clock, Unix seconds: what Bird's timestamps are checked against.
        self.clock = clock
        self._pending: set[asyncio.Task[None]] = set()

    @classmethod
    def build(cls, settings: Settings, tenants: Tenants, outage: Outage) -> Webhooks:
        receivers: dict[tuple[Provider, str], Receiver] = {}
        for name, tenant in settings.tenant_settings().items():
            service = tenants[name].recordings
            for provider in service.configured:
                section = REGISTRY[provider].settings(tenant)
                key: Secret | None = getattr(section, "webhook_signing_key", None)
                if key is not None and str(key):
                    receivers[provider, name] = Receiver(name, provider, key, service)
        seen = Seen.from_settings(settings.cache, settings.webhook_dedupe_ttl, outage)
        return cls(receivers, seen, max_pending=settings.webhook_max_pending)

    def receiver(self, provider: Provider, tenant: str) -> Receiver | None:
        return self._receivers.get((provider, tenant))

    @property
    def full(self) -> bool:
        """Whether as much work is going on as allowed."""
        return len(self._pending) >= self.max_pending

    def start(self, job: Job) -> None:
        """Run ``job`` after the answer, tracked until it ends."""
        task = asyncio.get_running_loop().create_task(job.run())
        self._pending.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("webhook work failed unexpectedly", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until the work started so far (and whatever it started) has ended."""
        while self._pending:
            await asyncio.wait(set(self._pending))

    async def aclose(self) -> None:
        """Give the work going on ``grace`` seconds, then cancel what is left; close Redis."""
        if self._pending:
            _, late = await asyncio.wait(set(self._pending), timeout=self.grace)
            for task in late:
                task.cancel()
            if late:
                logger.warning("%d webhook deliveries cut at shutdown", len(late))
                await asyncio.wait(late)
        await self.seen.aclose()
