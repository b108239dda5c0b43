"""A test network: sandbox hosts over ASGI, invented external hosts by handler, and their DNS.

``Network`` is an upstream transport that also answers ``NameResolver.resolve``, so the
redirect policy never asks a real DNS and nothing leaves the process. It records every
request it is asked to carry: a refused hop must never reach it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import httpx

Handler = Callable[[httpx.Request], httpx.Response]


class Wire(httpx.AsyncByteStream):
    """A body that arrives like one from the network (a plain-bytes response is read eagerly)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


class Network(httpx.AsyncBaseTransport):
    """``inner`` for the sandbox, ``hosts[name]`` for invented hosts, ``dns`` for names."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        hosts: Mapping[str, Handler] | None = None,
        dns: Mapping[str, list[str]] | None = None,
    ) -> None:
        self.inner = inner
        self.hosts = dict(hosts or {})
        self.dns = dict(dns or {})
        self.seen: list[httpx.Request] = []
        self.resolved: list[str] = []

    async def resolve(self, host: str) -> list[str]:
        self.resolved.append(host)
        if host not in self.dns:
            raise OSError(f"no such host {host!r}")
        return self.dns[host]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        handler = self.hosts.get(request.url.host)
        if handler is not None:
            return handler(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
