"""Scopes: a field the caller may not see is null with FORBIDDEN at its path, the rest answers;
and media links are bound to the tenant that minted them."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from app.access.keys import new_key
from app.logs import TENANT, TenantFilter
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.support import gateway_client

pytestmark = pytest.mark.anyio

LISTENER, MEDIA_ONLY, FULL = new_key(), new_key(), new_key()
TENANTS = {
    "listener": TenantSpec(LISTENER, scopes=["recordings:read"]),
    "mediaonly": TenantSpec(MEDIA_ONLY, scopes=["media:read"]),
    "full": TenantSpec(FULL),
}


@pytest.fixture
def tenant_settings(tmp_path: Path, sandbox_config: SandboxConfig) -> Settings:
    return Settings.from_env(write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS))


@pytest.fixture
async def client(
    tenant_settings: Settings, sandbox_app: Starlette
) -> AsyncIterator[httpx.AsyncClient]:
    async with gateway_client(tenant_settings, httpx.ASGITransport(app=sandbox_app)) as client:
        yield client


def query(rid: str) -> str:
    return f'{{ recording(provider: BIRD, id: "{rid}") {{ id status mediaUrl media {{ url }} }} }}'


async def test_media_without_media_read_is_forbidden_and_the_rest_answers(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = (
        await client.post("/graphql", json={"query": query(rid)}, headers=bearer(LISTENER))
    ).json()
    recording = body["data"]["recording"]
    assert recording["id"] == rid and recording["status"] == "COMPLETED"
    assert recording["mediaUrl"] is None and recording["media"] is None
    forbidden = {tuple(e["path"]): e["extensions"]["code"] for e in body["errors"]}
    assert forbidden == {
        ("recording", "mediaUrl"): "FORBIDDEN",
        ("recording", "media"): "FORBIDDEN",
    }
    assert all("media:read" in e["message"] for e in body["errors"])


async def test_recordings_without_recordings_read_are_forbidden(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = (
        await client.post("/graphql", json={"query": query(rid)}, headers=bearer(MEDIA_ONLY))
    ).json()
    assert body["data"] == {"recording": None}
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert sandbox.requests == []


async def test_a_caller_with_both_scopes_gets_everything(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = (await client.post("/graphql", json={"query": query(rid)}, headers=bearer(FULL))).json()
    assert "errors" not in body
    assert body["data"]["recording"]["mediaUrl"].startswith("http://gateway.test/media/")


async def test_a_media_link_stops_working_once_its_tenant_is_gone(
    client: httpx.AsyncClient,
    sandbox: Sandbox,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    tmp_path: Path,
) -> None:
    rid = sandbox.sample_ids()["bird"]
    body = (await client.post("/graphql", json={"query": query(rid)}, headers=bearer(FULL))).json()
    url = body["data"]["recording"]["mediaUrl"]
    assert (await client.get(url)).status_code == 200
    # The same gateway (same signing key), the tenant "full" renamed: its links die with it.
    renamed = {"listener": TENANTS["listener"], "renamed": TENANTS["full"]}
    env = write_config(tmp_path / "other.toml", sandbox_config, renamed)
    sandbox.requests.clear()
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as other:
        response = await other.get(url)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "MEDIA_LINK_UNKNOWN"
    assert sandbox.requests == []


async def test_a_media_download_is_logged_as_its_tenant(
    client: httpx.AsyncClient, sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    """/media/{token} has no caller: the link itself says whose it is."""
    rid = sandbox.sample_ids()["bird"]
    body = (await client.post("/graphql", json={"query": query(rid)}, headers=bearer(FULL))).json()
    url = body["data"]["recording"]["mediaUrl"]
    sandbox.faults.inject("bird", 500, times=10)
    caplog.handler.addFilter(TenantFilter())
    with caplog.at_level(logging.WARNING, logger="app.media.proxy"):
        response = await client.get(url)
    assert response.status_code == 502
    [record] = [r for r in caplog.records if r.name == "app.media.proxy"]
    assert getattr(record, "tenant", None) == "full"
    assert TENANT.get() == "-", "the tenant outlives its request"
