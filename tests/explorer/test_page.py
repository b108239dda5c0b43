"""The GraphiQL page and its files over HTTP: the policy it is served with, the demo's
document, and nothing at all with ``GATEWAY_GRAPHIQL=0``."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import key_hash, new_key
from app.explorer.assets import IMMUTABLE, PAGE, STATIC, manifest
from app.explorer.page import AUTH_HEADERS
from app.main import create_app
from app.settings import Settings
from tests.support import gateway_client

pytestmark = pytest.mark.anyio

HTML = {"accept": "text/html"}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self' ws://gateway.test wss://gateway.test; img-src 'self' data:; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@pytest.fixture
async def off(settings: Settings, sandbox_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(
        replace(settings, graphiql=False), httpx.ASGITransport(app=sandbox_app)
    ) as client:
        yield client


def loaded(page: str) -> list[str]:
    """What the page loads: its scripts' and stylesheets' URLs."""
    return re.findall(r'<(?:script src|link rel="stylesheet" href)="([^"]+)"', page)


async def test_the_page_is_served_with_a_policy_of_self_only(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/graphql", headers=HTML)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == POLICY
    assert "<script>" not in response.text and "<style" not in response.text
    assert all(url.startswith("/graphiql/") for url in loaded(response.text))
    assert len(loaded(response.text)) == 6


async def test_a_host_header_that_is_not_a_host_stays_out_of_the_policy(
    gateway: httpx.AsyncClient,
) -> None:
    response = await gateway.get("/graphql", headers=HTML | {"host": "a; script-src *"})

    policy = response.headers["content-security-policy"]
    assert "connect-src 'self';" in policy and "*" not in policy


async def test_every_file_the_page_loads_is_served_with_its_type(
    gateway: httpx.AsyncClient,
) -> None:
    page = await gateway.get("/graphql", headers=HTML)
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

    for url in loaded(page.text):
        response = await gateway.get(url)
        name = url.removeprefix("/graphiql/")
        assert response.status_code == 200, url
        assert response.headers["content-type"] == types[url[url.rindex(".") :]], url
        assert (
            response.content
            == ((STATIC / name) if name in manifest() else PAGE / name).read_bytes()
        )
        if name in manifest():
            assert response.headers["cache-control"] == IMMUTABLE
        else:
            assert response.headers["cache-control"] == "no-cache"


async def test_only_the_listed_files_are_served(gateway: httpx.AsyncClient) -> None:
    for path in ("/graphiql/graphiql.html", "/graphiql/..%2fassets.json", "/graphiql/x.js"):
        assert (await gateway.get(path)).status_code == 404, path


async def test_the_default_document_reaches_the_page_escaped(
    settings: Settings, sandbox_app: Starlette
) -> None:
    document = 'query Demo { recording(provider: TWILIO, id: "RE1<&>") { id } }'
    app = create_app(
        settings, transport=httpx.ASGITransport(app=sandbox_app), graphiql_default=document
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway.test"
    ) as client:
        page = (await client.get("/graphql", headers=HTML)).text

    assert f'data-default-query="{html.escape(document, quote=True)}"' in page
    assert "data-default-headers" not in page  # no client auth: nothing to fill in


async def test_with_client_auth_the_headers_editor_opens_on_an_authorization_line(
    settings: Settings, sandbox_app: Starlette
) -> None:
    keyed = replace(settings, api_keys=(key_hash(new_key()),))
    async with gateway_client(keyed, httpx.ASGITransport(app=sandbox_app)) as client:
        page = (await client.get("/graphql", headers=HTML)).text

    assert 'data-tools="headers"' in page
    assert f'data-default-headers="{html.escape(AUTH_HEADERS, quote=True)}"' in page
    assert "data-default-query" not in page  # GraphiQL's own welcome


async def test_turned_off_neither_the_page_nor_its_files_are_served(
    off: httpx.AsyncClient,
) -> None:
    page = await off.get("/graphql", headers=HTML)
    assert page.status_code == 404
    assert "content-security-policy" not in page.headers
    for name in [*manifest(), "graphiql-boot.js"]:
        assert (await off.get(f"/graphiql/{name}")).status_code == 404, name
    # Queries are not affected.
    answer = await off.get("/graphql", params={"query": "{ __typename }"})
    assert answer.status_code == 200
