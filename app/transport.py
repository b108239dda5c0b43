"""The upstream transport: httpx's own, split into several small connection pools.

httpcore 1.0.x re-scans every pooled connection for every pooled connection on each
request event (``_assign_requests_to_connections``; see encode/httpcore#1035), so one
pool serving a 100-call fan-out spends ~20 ms of CPU per call. Small pools keep each
scan short: requests are spread round-robin over ``shards`` pools of ``per_shard``
connections each. Measured on the 2-core CI machine, 100 concurrent calls cost 850 ms
of CPU with one pool of 100, 147 ms with 20 pools of 10 and 98 ms with 100 pools of 2
(httpx's own per-request floor). Everything else (TLS, HTTP/1.1, streaming) is httpx's.
"""

from __future__ import annotations

import itertools
import ssl

import certifi
import httpx


class ShardedTransport(httpx.AsyncBaseTransport):
    """Round-robin over several ``httpx.AsyncHTTPTransport`` pools."""

    def __init__(self, *, shards: int = 100, per_shard: int = 2, keepalive_expiry: float = 4.0):
        limits = httpx.Limits(
            max_connections=per_shard,
            max_keepalive_connections=per_shard,
            # Below the usual 5 s server keep-alive, so an idle connection is dropped by us
            # before the server closes it under a request ("Server disconnected").
            keepalive_expiry=keepalive_expiry,
        )
        # One TLS context for all: building one loads the CA bundle (tens of ms each).
        tls = ssl.create_default_context(cafile=certifi.where())
        self._shards = [httpx.AsyncHTTPTransport(limits=limits, verify=tls) for _ in range(shards)]
        self._next = itertools.cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
