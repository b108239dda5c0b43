"""Fixtures for the sandbox provider tests: a fresh sandbox app per test and a client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.sandbox import Sandbox, create_sandbox_app

BASE_URL = "http://sandbox.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def app() -> Starlette:
    return create_sandbox_app()


@pytest.fixture
def sandbox(app: Starlette) -> Sandbox:
    state: Sandbox = app.state.sandbox
    return state


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http
