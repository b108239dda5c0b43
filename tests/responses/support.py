"""Response cache test helpers: a gateway over the sandbox with its own environment and
cache clock, and the queries the tests send."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from app.main import create_app
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.support import sandbox_env

ONE = """query One($provider: Provider!, $id: ID!) {
  recording(provider: $provider, id: $id) { provider id status durationSeconds }
}"""
BY_REF = """query Refs($refs: [RecordingRefInput!]!) {
  recordingsByRef(refs: $refs) { provider id status durationSeconds }
}"""
MEDIA = """query Media($provider: Provider!, $id: ID!) {
  recording(provider: $provider, id: $id) { id mediaUrl }
}"""
LISTING = "{ recordings(first: 100) { nodes { provider id status durationSeconds } } }"


class Clock:
    """The cache's wall clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def settings_for(config: SandboxConfig, **env: str) -> Settings:
    """A Redis call may take a second here (production: 0.1 s), so that a busy machine never
    turns a read into a bypass these tests would take for the cache's doing."""
    return Settings.from_env({"GATEWAY_CACHE_TIMEOUT": "1", **sandbox_env(config), **env})


@contextlib.asynccontextmanager
async def gateway(
    settings: Settings, sandbox_app: Starlette, clock: Clock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway over the sandbox, its caches on ``clock`` (the wall clock if None)."""
    app = create_app(
        settings,
        transport=httpx.ASGITransport(app=sandbox_app),
        cache_clock=clock or time.time,
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


def params(query: str, variables: Mapping[str, Any] | None = None) -> dict[str, str]:
    return {"query": query, "variables": json.dumps(variables or {})}


def one(provider: str, rid: str) -> dict[str, str]:
    """GET parameters of ``ONE``."""
    return params(ONE, {"provider": provider, "id": rid})


def max_age(response: httpx.Response) -> int:
    found = re.fullmatch(r"private, max-age=(\d+)", response.headers["cache-control"])
    assert found is not None, response.headers["cache-control"]
    return int(found.group(1))


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of ``/metrics``' text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(name + " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
