"""``/livez`` and ``/readyz``: liveness is the process answering; readiness is valid settings
and a cache that answers or is bypassed, never the providers' reachability."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import httpx
import pytest

from app.health import PROBE_TIMEOUT
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.servers import raw_server
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio


def with_cache(config: SandboxConfig, url: str) -> Settings:
    return Settings.from_env({**sandbox_env(config), "GATEWAY_CACHE_URL": url})


async def probe(settings: Settings, path: str) -> httpx.Response:
    # A transport that fails every upstream call: the providers are all unreachable.
    unreachable = httpx.MockTransport(lambda request: httpx.Response(503))
    async with gateway_client(settings, unreachable) as client:
        return await client.get(path)


@pytest.mark.parametrize("path", ["/livez", "/healthz"])
async def test_livez_answers(settings: Settings, path: str) -> None:
    response = await probe(settings, path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(("url", "cache"), [("memory://", "memory"), ("none://", "none")])
async def test_readyz_with_a_local_cache_is_ready_whatever_the_providers_do(
    sandbox_config: SandboxConfig, url: str, cache: str
) -> None:
    response = await probe(with_cache(sandbox_config, url), "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "cache": cache}


async def test_readyz_with_a_working_redis(sandbox_config: SandboxConfig, redis_proc: Any) -> None:
    settings = with_cache(sandbox_config, f"redis://{redis_proc.host}:{redis_proc.port}/0")
    response = await probe(settings, "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "cache": "ok"}


def closed_port() -> int:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        port: int = spare.getsockname()[1]
    return port  # closed again: connecting to it is refused


async def test_readyz_with_redis_down_is_still_ready_and_says_bypassed(
    sandbox_config: SandboxConfig,
) -> None:
    # The cache fails open (app.cache): queries are answered from the providers, so taking
    # the replica out of the load balancer would only turn a slowdown into an outage.
    settings = with_cache(sandbox_config, f"redis://127.0.0.1:{closed_port()}/0")
    response = await probe(settings, "/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "cache": "bypassed"}


async def test_readyz_with_a_frozen_redis_answers_within_the_probe_timeout(
    sandbox_config: SandboxConfig,
) -> None:
    def never_answer(connection: socket.socket, over: threading.Event) -> None:
        over.wait()

    with raw_server(never_answer) as frozen:
        port = int(frozen.url.rsplit(":", 1)[1])
        settings = with_cache(sandbox_config, f"redis://127.0.0.1:{port}/0")
        started = time.monotonic()
        response = await probe(settings, "/readyz")
        elapsed = time.monotonic() - started
    assert response.json() == {"status": "ready", "cache": "bypassed"}
    assert elapsed < PROBE_TIMEOUT + 1.0
