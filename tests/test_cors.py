"""CORS (app.cors): preflights answered before the gate and the router, the allowed origin
echoed on every answer (refusals included), nothing for other origins, nothing at all when
``GATEWAY_CORS_ORIGINS`` is unset.

These tests also hold Starlette's ``CORSMiddleware`` to what the gateway relies on: a
preflight answered 200 with the configured methods, headers and max age; a disallowed
origin never echoed; ``*`` without credentials sent as ``*``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import key_hash, new_key
from app.cors import ALLOW_HEADERS, EXPOSE_HEADERS
from app.demo import demo_settings
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.media.support import mint
from tests.support import SANDBOX_URL, gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

APP_ORIGIN = "http://app.example:5173"
OTHER_ORIGIN = "http://evil.example"
QUERY = '{ recording(provider: TWILIO, id: "RE04a3d4b79350a180c170af92def4cbd2") { id } }'


def gateway(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, **env: str
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    settings = Settings.from_env(sandbox_env(sandbox_config) | env)
    return gateway_client(settings, httpx.ASGITransport(app=sandbox_app))


@pytest.fixture
async def allowing(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    origins = f"{APP_ORIGIN},http://127.0.0.1:3000"
    async with gateway(sandbox_config, sandbox_app, GATEWAY_CORS_ORIGINS=origins) as client:
        yield client


def preflight(method: str, *headers: str, origin: str = APP_ORIGIN) -> dict[str, str]:
    asked = {"origin": origin, "access-control-request-method": method}
    if headers:
        asked["access-control-request-headers"] = ", ".join(headers)
    return asked


def listed(response: httpx.Response, name: str) -> set[str]:
    return {part.strip().lower() for part in response.headers.get(name, "").split(",") if part}


def cors_headers(response: httpx.Response) -> set[str]:
    return {name for name in response.headers if name.lower().startswith("access-control-")}


async def test_unset_means_no_cors_header_at_all(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    async with gateway(sandbox_config, sandbox_app) as client:
        answer = await client.post(
            "/graphql", json={"query": QUERY}, headers={"origin": APP_ORIGIN}
        )
        asked = await client.options("/graphql", headers=preflight("POST", "content-type"))
        url = await mint(client, Provider.TWILIO, sandbox.sample_ids()["twilio"])
        media = await client.get(url, headers={"origin": APP_ORIGIN, "range": "bytes=0-9"})
        media_asked = await client.options(url, headers=preflight("GET", "range"))
    assert answer.status_code == 200 and "errors" not in answer.json()
    assert media.status_code == 206
    # No middleware: the gate refuses OPTIONS as before, the router refuses it for media.
    assert (asked.status_code, media_asked.status_code) == (405, 405)
    for response in (answer, asked, media, media_asked):
        assert cors_headers(response) == set(), response.headers


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_a_graphql_preflight_is_answered_200_before_the_gate(
    allowing: httpx.AsyncClient, sandbox: Sandbox, method: str
) -> None:
    asked = ("authorization", "content-type", "x-request-id", "x-gateway-cost")
    response = await allowing.options("/graphql", headers=preflight(method, *asked))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert {"get", "post"} <= listed(response, "access-control-allow-methods")
    assert set(asked) <= listed(response, "access-control-allow-headers")
    assert response.headers["access-control-max-age"] == "600"
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in listed(response, "vary")
    assert sandbox.requests == []


async def test_a_media_preflight_is_answered_200_before_the_router(
    allowing: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    url = await mint(allowing, Provider.TWILIO, sandbox.sample_ids()["twilio"])
    sandbox.requests.clear()
    for method in ("GET", "HEAD"):
        response = await allowing.options(url, headers=preflight(method, "range", "x-request-id"))
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        assert method.lower() in listed(response, "access-control-allow-methods")
        assert {"range", "x-request-id"} <= listed(response, "access-control-allow-headers")
    assert sandbox.requests == []


async def test_every_header_the_gateway_reads_is_allowed(allowing: httpx.AsyncClient) -> None:
    response = await allowing.options("/graphql", headers=preflight("POST", *ALLOW_HEADERS))
    assert response.status_code == 200
    assert {"authorization", "content-type", "x-request-id", "range"} <= set(
        h.lower() for h in ALLOW_HEADERS
    )


@pytest.mark.parametrize(
    "headers",
    [
        preflight("POST", "content-type", origin=OTHER_ORIGIN),
        preflight("POST", "content-type", origin="http://app.example:5174"),
        preflight("POST", "content-type", origin="https://app.example:5173"),
        preflight("PUT", "content-type"),
        preflight("POST", "cookie"),
        preflight("POST", "content-type") | {"access-control-request-private-network": "true"},
    ],
    ids=["other-origin", "other-port", "other-scheme", "method", "header", "private-network"],
)
async def test_a_preflight_asking_too_much_is_not_granted(
    allowing: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await allowing.options("/graphql", headers=headers)
    assert response.status_code == 400
    if headers["origin"] != APP_ORIGIN:
        assert "access-control-allow-origin" not in response.headers


async def test_an_allowed_origin_is_echoed_on_answers(allowing: httpx.AsyncClient) -> None:
    for origin in (APP_ORIGIN, "http://127.0.0.1:3000"):
        response = await allowing.post(
            "/graphql", json={"query": QUERY}, headers={"origin": origin}
        )
        assert response.status_code == 200 and "errors" not in response.json()
        assert response.headers["access-control-allow-origin"] == origin
        assert "origin" in listed(response, "vary")
        assert "access-control-allow-credentials" not in response.headers
        got = await allowing.get("/graphql", params={"query": QUERY}, headers={"origin": origin})
        assert got.headers["access-control-allow-origin"] == origin


async def test_another_origin_gets_no_allow_origin(allowing: httpx.AsyncClient) -> None:
    # The server answers (CORS is enforced by the browser); the answer just does not let a
    # page of that origin read it.
    response = await allowing.post(
        "/graphql", json={"query": QUERY}, headers={"origin": OTHER_ORIGIN}
    )
    assert "access-control-allow-origin" not in response.headers
    assert "origin" in listed(response, "vary")
    same_origin = await allowing.post("/graphql", json={"query": QUERY})
    assert "access-control-allow-origin" not in same_origin.headers


async def test_star_allows_any_origin_without_credentials(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    async with gateway(sandbox_config, sandbox_app, GATEWAY_CORS_ORIGINS="*") as client:
        asked = await client.options(
            "/graphql", headers=preflight("POST", "authorization", "content-type")
        )
        answer = await client.post(
            "/graphql", json={"query": QUERY}, headers={"origin": OTHER_ORIGIN}
        )
    assert asked.status_code == 200
    for response in (asked, answer):
        assert response.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in response.headers
    assert "authorization" in listed(asked, "access-control-allow-headers")


async def test_media_answers_expose_what_a_player_reads(
    allowing: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    url = await mint(allowing, Provider.TWILIO, sandbox.sample_ids()["twilio"])
    ranged = await allowing.get(url, headers={"origin": APP_ORIGIN, "range": "bytes=0-99"})
    head = await allowing.head(url, headers={"origin": APP_ORIGIN})
    assert ranged.status_code == 206 and len(ranged.content) == 100
    assert head.status_code == 200
    wanted = {"content-range", "accept-ranges", "content-length", "content-disposition"}
    for response in (ranged, head):
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN
        exposed = listed(response, "access-control-expose-headers")
        assert wanted | {"retry-after", "etag", "x-request-id"} <= exposed
        assert exposed == {h.lower() for h in EXPOSE_HEADERS}


async def test_media_refusals_carry_cors_headers(allowing: httpx.AsyncClient) -> None:
    response = await allowing.get("/media/not-a-token", headers={"origin": APP_ORIGIN})
    assert response.status_code == 403
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_a_401_carries_cors_headers(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    key = new_key()
    env = {"GATEWAY_CORS_ORIGINS": APP_ORIGIN, "GATEWAY_API_KEYS": f"sha256:{key_hash(key)}"}
    async with gateway(sandbox_config, sandbox_app, **env) as client:
        # The preflight carries no credentials (browsers never send them on one).
        asked = await client.options("/graphql", headers=preflight("POST", "authorization"))
        refused = await client.post(
            "/graphql", json={"query": QUERY}, headers={"origin": APP_ORIGIN}
        )
        served = await client.post(
            "/graphql",
            json={"query": QUERY},
            headers={"origin": APP_ORIGIN, "authorization": f"Bearer {key}"},
        )
    assert asked.status_code == 200
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == APP_ORIGIN
    assert refused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert served.status_code == 200
    assert served.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_a_413_carries_cors_headers(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    env = {"GATEWAY_CORS_ORIGINS": APP_ORIGIN, "GATEWAY_MAX_BODY_BYTES": "256"}
    async with gateway(sandbox_config, sandbox_app, **env) as client:
        response = await client.post(
            "/graphql", json={"query": QUERY + " " * 300}, headers={"origin": APP_ORIGIN}
        )
    assert response.status_code == 413
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN


async def test_a_429_carries_cors_headers_and_exposes_retry_after(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    env = {"GATEWAY_CORS_ORIGINS": APP_ORIGIN, "GATEWAY_RATE_LIMIT": "1/minute"}
    async with gateway(sandbox_config, sandbox_app, **env) as client:
        first = await client.post("/graphql", json={"query": QUERY}, headers={"origin": APP_ORIGIN})
        second = await client.post(
            "/graphql", json={"query": QUERY}, headers={"origin": APP_ORIGIN}
        )
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["access-control-allow-origin"] == APP_ORIGIN
    assert int(second.headers["retry-after"]) >= 1
    assert "retry-after" in listed(second, "access-control-expose-headers")


def test_the_demo_allows_any_origin_unless_told_otherwise() -> None:
    config = SandboxConfig()
    assert demo_settings(Settings(), SANDBOX_URL, config).cors_origins == ("*",)
    chosen = Settings(cors_origins=(APP_ORIGIN,))
    assert demo_settings(chosen, SANDBOX_URL, config).cors_origins == (APP_ORIGIN,)
