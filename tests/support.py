"""Test helpers: run the real gateway app against an injected transport."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from app import providers
from app.main import create_app
from app.models import Provider
from app.sandbox import Sandbox
from app.sandbox.config import SandboxConfig
from app.settings import Settings

SANDBOX_URL = "http://sandbox.test"
SIGNING_KEY = "test-signing-key-0123456789abcdef"


def sandbox_env(config: SandboxConfig, base_url: str = SANDBOX_URL) -> dict[str, str]:
    """The environment an operator would set to point every provider at a sandbox."""
    return providers.sandbox_env(config, base_url) | {"GATEWAY_SIGNING_KEYS": SIGNING_KEY}


@contextlib.asynccontextmanager
async def gateway_client(
    settings: Settings, transport: httpx.AsyncBaseTransport
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to ``create_app(settings)`` with its lifespan running."""
    app: Starlette = create_app(settings, transport=transport)
    async with LifespanManager(app) as manager:
        gateway = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=gateway, base_url="http://gateway.test") as client:
            yield client


async def graphql(
    client: httpx.AsyncClient, query: str, variables: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """POST a query to /graphql and return the decoded body."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    return body


RECORDING_FIELDS = """
    provider id accountId callId conferenceId status providerStatus source direction
    from to channels durationSeconds startedAt endedAt createdAt updatedAt
    price { amount currency } errorCode mediaFormats raw
"""

RECORDING_QUERY = f"""
query One($provider: Provider!, $id: ID!) {{
  recording(provider: $provider, id: $id) {{ {RECORDING_FIELDS} }}
}}
"""


def secrets_of(config: SandboxConfig) -> list[str]:
    """Every credential of ``config``: none may ever reach a client, a log or a cache key."""
    return [
        config.twilio_auth_token,
        config.twilio_api_secret,
        config.signalwire_api_token,
        config.bird_access_key,
    ]


async def fetch_recording(
    client: httpx.AsyncClient, provider: Provider, rid: str
) -> dict[str, Any]:
    """The body of ``RECORDING_QUERY`` for one recording."""
    return await graphql(client, RECORDING_QUERY, {"provider": provider.name, "id": rid})


def upstream_count(sandbox: Sandbox, rid: str) -> int:
    """How many requests the sandbox received that name recording ``rid``."""
    return sum(1 for seen in sandbox.requests if rid in seen.path)
