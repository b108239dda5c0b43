"""Recording.media / mediaUrl: what links are handed out, when, and what they never contain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.media.support import SERVED, accounts_of, claims, mint, query_media, token_of
from tests.support import gateway_client, sandbox_env, secrets_of

pytestmark = pytest.mark.anyio


def ready_id(sandbox: Sandbox, provider: Provider) -> str:
    return sandbox.sample_ids()[provider.value]


def near(moment: str, expected: datetime) -> bool:
    return abs((datetime.fromisoformat(moment) - expected).total_seconds()) <= 2


@pytest.mark.parametrize(("provider", "fmt"), SERVED, ids=lambda v: getattr(v, "value", v))
async def test_proxy_link_points_at_the_gateway(
    gateway: httpx.AsyncClient, sandbox: Sandbox, provider: Provider, fmt: str
) -> None:
    body = await query_media(gateway, provider, ready_id(sandbox, provider), fmt=fmt)
    assert "errors" not in body, body
    recording = body["data"]["recording"]
    link = recording["media"]
    assert link["url"].startswith("http://gateway.test/media/")
    assert recording["mediaUrl"].startswith("http://gateway.test/media/")
    assert link["format"] == fmt
    assert link["contentType"] == {"MP3": "audio/mpeg", "WAV": "audio/wav"}[fmt]
    assert near(link["expiresAt"], datetime.now(UTC) + timedelta(seconds=900))
    payload = claims(token_of(link["url"]))
    assert payload["p"] == provider.value and payload["f"] == fmt.lower()
    assert payload["exp"] == int(datetime.fromisoformat(link["expiresAt"]).timestamp())
    assert sandbox.requests_to("s3") == [], "a PROXY link costs no media request"


async def test_links_are_null_until_the_media_is_ready(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for provider in Provider:
        pending = next(
            r
            for r in sandbox.dataset.listing(provider.value)
            if not r.ready and r.status != "deleted"
        )
        for delivery in ("PROXY", "DIRECT"):
            body = await query_media(gateway, provider, pending.id, delivery=delivery)
            assert "errors" not in body, body
            assert body["data"]["recording"]["status"] != "COMPLETED"
            assert body["data"]["recording"]["media"] is None
            assert body["data"]["recording"]["mediaUrl"] is None


async def test_bird_offers_mp3_only(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    body = await query_media(gateway, Provider.BIRD, ready_id(sandbox, Provider.BIRD), fmt="WAV")
    assert "errors" not in body, body
    assert body["data"]["recording"]["media"] is None
    assert body["data"]["recording"]["mediaUrl"] is None


async def test_expires_in_below_one_is_bad_input(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    body = await query_media(
        gateway, Provider.TWILIO, ready_id(sandbox, Provider.TWILIO), expires_in=0
    )
    assert body["data"]["recording"]["media"] is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"BAD_USER_INPUT"}


async def test_expires_in_is_capped_and_public_url_is_the_base(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    env = sandbox_env(sandbox_config) | {
        "GATEWAY_MEDIA_MAX_TTL": "60",
        "GATEWAY_PUBLIC_URL": "https://media.example.com/rg/",
    }
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        rid = ready_id(sandbox, Provider.SIGNALWIRE)
        body = await query_media(client, Provider.SIGNALWIRE, rid, expires_in=86400)
    link = body["data"]["recording"]["media"]
    assert link["url"].startswith("https://media.example.com/rg/media/")
    assert near(link["expiresAt"], datetime.now(UTC) + timedelta(seconds=60))


async def test_twilio_has_no_direct_link(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    rid = ready_id(sandbox, Provider.TWILIO)
    body = await query_media(gateway, Provider.TWILIO, rid, delivery="DIRECT")
    assert body["data"]["recording"]["media"] is None
    assert body["data"]["recording"]["mediaUrl"] is None
    for error in body["errors"]:
        assert error["extensions"] == {"code": "MEDIA_DIRECT_UNAVAILABLE", "provider": "TWILIO"}


async def test_signalwire_direct_link_is_the_public_url(
    gateway: httpx.AsyncClient, sandbox: Sandbox, sandbox_app: Starlette
) -> None:
    rid = ready_id(sandbox, Provider.SIGNALWIRE)
    for fmt in ("MP3", "WAV"):
        body = await query_media(
            gateway, Provider.SIGNALWIRE, rid, fmt=fmt, delivery="DIRECT", expires_in=120
        )
        link = body["data"]["recording"]["media"]
        assert link["url"].endswith(f"/Recordings/{rid}.{fmt.lower()}")
        assert near(link["expiresAt"], datetime.now(UTC) + timedelta(seconds=120))
        transport = httpx.ASGITransport(app=sandbox_app)
        async with httpx.AsyncClient(transport=transport) as anonymous:
            response = await anonymous.get(link["url"])
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("audio/")


async def test_bird_direct_link_is_presigned_with_its_real_expiry(
    gateway: httpx.AsyncClient, sandbox: Sandbox, sandbox_app: Starlette
) -> None:
    moment = datetime(2026, 3, 3, 9, 0, 0, tzinfo=UTC)
    sandbox.clock = lambda: moment
    rid = ready_id(sandbox, Provider.BIRD)
    body = await query_media(gateway, Provider.BIRD, rid, delivery="DIRECT", expires_in=3600)
    link = body["data"]["recording"]["media"]
    query = parse_qs(urlsplit(link["url"]).query)
    assert query["X-Amz-Date"] == ["20260303T090000Z"]
    assert datetime.fromisoformat(link["expiresAt"]) == moment + timedelta(seconds=600)
    transport = httpx.ASGITransport(app=sandbox_app)
    async with httpx.AsyncClient(transport=transport) as anonymous:
        response = await anonymous.get(link["url"])
    assert response.status_code == 200 and response.headers["content-type"] == "audio/mpeg"


async def test_links_are_minted_per_request_never_cached(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    rid = ready_id(sandbox, Provider.BIRD)
    direct = [
        (await query_media(gateway, Provider.BIRD, rid, delivery="DIRECT"))["data"]["recording"]
        for _ in range(2)
    ]
    media_calls = [r for r in sandbox.requests_to("bird") if r.path.endswith(".mp3")]
    assert len(media_calls) == 4, "each DIRECT field asks Bird for a fresh presigned link"
    metadata_calls = [r for r in sandbox.requests_to("bird") if r.path.endswith(rid)]
    assert len(metadata_calls) == 1, "while the recording itself comes from the cache"
    assert all(d["media"]["url"].startswith("http://sandbox.test/_s3/") for d in direct)
    short = await mint(gateway, Provider.BIRD, rid, expires_in=10)
    long = await mint(gateway, Provider.BIRD, rid, expires_in=20)
    assert claims(token_of(long))["exp"] - claims(token_of(short))["exp"] in (10, 11)


async def test_no_credentials_or_accounts_in_links(
    gateway: httpx.AsyncClient, sandbox: Sandbox, sandbox_config: SandboxConfig
) -> None:
    handed_out = []
    for provider, fmt in SERVED:
        for delivery in ("PROXY", "DIRECT"):
            rid = ready_id(sandbox, provider)
            body = await query_media(gateway, provider, rid, fmt=fmt, delivery=delivery)
            handed_out.append(json.dumps(body))
            link = body["data"]["recording"]["media"]
            if delivery == "PROXY":
                payload = json.dumps(claims(token_of(link["url"])))
                for account in accounts_of(sandbox_config):
                    assert account not in link["url"] and account not in payload
    text = "\n".join(handed_out)
    for secret in secrets_of(sandbox_config):
        assert secret not in text
    assert "AccessKey" not in text and "Basic " not in text
