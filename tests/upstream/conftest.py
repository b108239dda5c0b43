"""Every upstream test runs against both transports, on asyncio and on uvloop."""

from __future__ import annotations

import pytest

from app.settings import UPSTREAM_TRANSPORTS


@pytest.fixture(
    params=[("asyncio", {}), ("asyncio", {"use_uvloop": True})], ids=["asyncio", "uvloop"]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """aiohttp runs on asyncio only; the gateway serves on uvloop, whose transports differ."""
    backend: tuple[str, dict[str, bool]] = request.param
    return backend


@pytest.fixture(params=UPSTREAM_TRANSPORTS)
def kind(request: pytest.FixtureRequest) -> str:
    """The transport under test, as ``GATEWAY_UPSTREAM_TRANSPORT`` names it."""
    name: str = request.param
    return name
