"""``/livez`` and ``/readyz``, for an orchestrator's probes (``/healthz`` is ``/livez``).

- ``/livez``: the process answers. Nothing else is checked: a failing check here restarts
  the process, which cures nothing a dependency is doing.
- ``/readyz``: the gateway can serve. Its settings are valid (it would not have started
  otherwise) and its cache is reachable, or bypassed. Providers are not probed: one provider's
  outage must never take every replica out of the load balancer, since the other providers
  (and cached recordings) still answer.

A Redis that does not answer leaves the gateway **ready**: the recording cache fails open
(``app.cache``), so queries are answered from the providers, only slower. Taking every
replica out at once for a cache outage would turn a slowdown into a full outage. The answer
says so (``"cache": "bypassed"``), for an operator to see. The probe is one ``EXISTS`` bounded
by ``PROBE_TIMEOUT``, so a frozen Redis never holds the probe past the orchestrator's own
timeout. Both answers are unauthenticated and name nothing about tenants or providers.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.cache import build_backend
from app.settings import CacheSettings

logger = logging.getLogger("app.health")

#: Seconds the cache has to answer a readiness probe.
PROBE_TIMEOUT = 0.25
PROBE_KEY = "rg:readyz"


class CacheProbe:
    """A bounded ping of the shared cache backend (Redis); memory and none need none."""

    def __init__(self, settings: CacheSettings, timeout: float = PROBE_TIMEOUT) -> None:
        self.kind = settings.kind
        self.timeout = timeout
        # Its own small connection, so that a probe never waits behind queries' traffic.
        self._backend: Any | None = (
            build_backend(settings, timeout=timeout) if settings.kind == "redis" else None
        )

    async def state(self) -> str:
        """``memory``, ``none``, ``ok`` (Redis answered) or ``bypassed`` (it did not)."""
        if self._backend is None:
            return self.kind
        try:
            async with asyncio.timeout(self.timeout):
                await self._backend.exists(PROBE_KEY)
        except Exception as exc:  # any failure means "bypassed": the cache fails open
            logger.debug("readiness: cache unreachable (%s); queries bypass it", type(exc).__name__)
            return "bypassed"
        return "ok"

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.close()


async def livez(request: Request) -> Response:
    """The process answers."""
    return JSONResponse({"status": "ok"}, headers={"cache-control": "no-store"})


async def readyz(request: Request) -> Response:
    """Ready to serve: settings valid, cache reachable or bypassed (the body says which);
    a Redis that is down leaves it ready (see the module's docstring)."""
    probe: CacheProbe = request.state.cache_probe
    body = {"status": "ready", "cache": await probe.state()}
    return JSONResponse(body, headers={"cache-control": "no-store"})
