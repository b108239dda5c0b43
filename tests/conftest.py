"""Shared fixtures: a fresh sandbox per test, and the gateway pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, SandboxConfig, create_sandbox_app
from app.settings import Settings
from tests.support import gateway_client, sandbox_env


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    return SandboxConfig()


@pytest.fixture
def sandbox_app(sandbox_config: SandboxConfig) -> Starlette:
    return create_sandbox_app(sandbox_config)


@pytest.fixture
def sandbox(sandbox_app: Starlette) -> Sandbox:
    state: Sandbox = sandbox_app.state.sandbox
    return state


@pytest.fixture
def settings(sandbox_config: SandboxConfig) -> Settings:
    return Settings.from_env(sandbox_env(sandbox_config))


@pytest.fixture
async def gateway(settings: Settings, sandbox_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client
