"""Helpers for the upstream tests: the gateway's transport as the settings build it."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Mapping

import httpx

from app.settings import Settings
from app.upstream import build_transport

MB = 1 << 20


def transport(kind: str, env: Mapping[str, str] | None = None) -> httpx.AsyncBaseTransport:
    """The transport ``GATEWAY_UPSTREAM_TRANSPORT=kind`` and ``env`` give the gateway."""
    return build_transport(Settings.from_env({**(env or {}), "GATEWAY_UPSTREAM_TRANSPORT": kind}))


@contextlib.asynccontextmanager
async def upstream_client(
    kind: str, env: Mapping[str, str] | None = None, *, timeout: float | httpx.Timeout = 10
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client over that transport (blind to the process's proxy variables)."""
    over = transport(kind, env)
    async with httpx.AsyncClient(transport=over, timeout=timeout, trust_env=False) as client:
        yield client


def pattern(size: int) -> bytes:
    """Bytes that never repeat at any offset that matters: a misplaced chunk shows."""
    return hashlib.shake_128(b"recording").digest(size)


def head(length: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % length
