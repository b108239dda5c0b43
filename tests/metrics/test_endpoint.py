"""``GET /metrics``: Prometheus' text format, outside the GraphQL gate, and behind
``GATEWAY_METRICS_TOKEN`` when it is set (the token never echoed)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette

from app.access.keys import key_hash
from app.errors import ConfigError
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.metrics.support import Scrape, gateway_with
from tests.support import sandbox_env

pytestmark = pytest.mark.anyio

TOKEN = "metrics-token-0123456789abcdef"
API_KEY = "rg_metrics-test-api-key-0123456789"


async def test_metrics_are_prometheus_text_of_every_gateway_metric(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    assert response.headers["cache-control"] == "no-store"
    names = {name for name, _ in Scrape.parse(response.text).samples}
    for declared in (
        "gateway_graphql_requests_total",
        "gateway_cache_available",
        "gateway_media_active_streams",
        "gateway_upstream_requests_total",
    ):
        assert declared in response.text
    assert "gateway_cache_available" in names
    # Only the gateway's registry: none of prometheus-client's default process collectors.
    assert "python_gc_objects_collected_total" not in response.text


async def test_metrics_need_no_api_key_when_graphql_does(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    env = {"GATEWAY_API_KEYS": f"sha256:{key_hash(API_KEY)}"}
    async with gateway_with(sandbox_config, sandbox_app, **env) as client:
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 401
        assert (await client.get("/metrics")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
    ids=["none", "wrong", "basic", "longer", "empty"],
)
async def test_with_a_token_a_scrape_without_it_is_401_and_never_echoes_it(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}
    async with gateway_with(sandbox_config, sandbox_app, GATEWAY_METRICS_TOKEN=TOKEN) as client:
        response = await client.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert TOKEN not in response.text
    assert "gateway_" not in response.text


async def test_with_the_token_the_scrape_is_served(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    async with gateway_with(sandbox_config, sandbox_app, GATEWAY_METRICS_TOKEN=TOKEN) as client:
        response = await client.get("/metrics", headers={"authorization": f"bearer  {TOKEN} "})
        # Not ASCII: hmac.compare_digest would raise on such a str; it is compared as bytes.
        non_ascii = await client.get(
            "/metrics", headers={b"authorization": "Bearer tökén".encode()}
        )
    assert response.status_code == 200
    assert "gateway_graphql_requests" in response.text
    assert TOKEN not in response.text
    assert non_ascii.status_code == 401


def test_a_short_token_is_refused_at_start_without_echoing_it() -> None:
    with pytest.raises(ConfigError, match="GATEWAY_METRICS_TOKEN") as raised:
        Settings.from_env(sandbox_env(SandboxConfig()) | {"GATEWAY_METRICS_TOKEN": "short-tok"})
    assert "short-tok" not in str(raised.value)


def test_the_token_is_a_secret_in_the_settings() -> None:
    settings = Settings.from_env(sandbox_env(SandboxConfig()) | {"GATEWAY_METRICS_TOKEN": TOKEN})
    assert str(settings.metrics_token) == TOKEN
    assert TOKEN not in repr(settings)
