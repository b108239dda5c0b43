"""Bearer JWTs through the whole gateway: a config of tenants with ``[auth.jwt]``, an identity
provider serving its JWKS on a real loopback socket (reached over the gateway's own
transport), and the sandbox's accounts behind each tenant.

A trusted token acts for the tenant its claim names, sees that tenant's accounts only, and
holds the scopes both the tenant and the token grant. Anything else is 401 before the query
is parsed, with no provider request. The key set is fetched once for many requests.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access.keys import new_key
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.access.support import TenantSpec, bearer, write_config
from tests.access.test_jwt import AUDIENCE, DROP, ISSUER, hand_made, pem, public_jwk, token
from tests.servers import serve
from tests.support import gateway_client

pytestmark = pytest.mark.anyio

ACME_KEY, GLOBEX_KEY, LISTENER_KEY = new_key(), new_key(), new_key()
KID = "rsa-1"
TENANTS = {
    "acme": TenantSpec(ACME_KEY),
    "globex": TenantSpec(GLOBEX_KEY, accounts={"twilio": 1, "signalwire": 1, "bird": 1}),
    # acme's accounts, but no media: a token's scopes cannot add any.
    "listener": TenantSpec(LISTENER_KEY, scopes=["recordings:read"]),
}
LISTING = "{ recordings(first: 100) { nodes { provider id accountId } } }"
PROVIDERS = ("twilio", "signalwire", "bird")


@dataclass(frozen=True)
class Keys:
    signer: rsa.RSAPrivateKey  # the identity provider's, published in its JWKS
    intruder: rsa.RSAPrivateKey  # nobody's: never published


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        signer=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        intruder=rsa.generate_private_key(public_exponent=65537, key_size=2048),
    )


@dataclass
class IdentityProvider:
    """The JWKS endpoint's URL and how many times it was fetched."""

    jwks: dict[str, Any]
    url: str = ""
    fetches: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def identity_provider(keys: Keys) -> Iterator[IdentityProvider]:
    provider = IdentityProvider({"keys": [public_jwk(keys.signer, KID, "RS256")]})

    async def jwks(request: Request) -> Response:
        with provider.lock:
            provider.fetches += 1
        return Response(json.dumps(provider.jwks), media_type="application/json")

    with serve(Starlette(routes=[Route("/.well-known/jwks.json", jwks)])) as url:
        provider.url = f"{url}/.well-known/jwks.json"
        yield provider


@pytest.fixture
def idp(identity_provider: IdentityProvider) -> IdentityProvider:
    identity_provider.fetches = 0
    return identity_provider


def jwt_section(**source: str) -> str:
    lines = ["[auth.jwt]", f'issuer = "{ISSUER}"', f'audience = "{AUDIENCE}"']
    return "\n".join(lines + [f'{name} = "{value}"' for name, value in source.items()]) + "\n"


@pytest.fixture
async def gateway(
    tmp_path: Path, sandbox_config: SandboxConfig, sandbox_app: Starlette, idp: IdentityProvider
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway of TENANTS, trusting the identity provider's tokens (its JWKS URL)."""
    env = write_config(
        tmp_path / "gateway.toml", sandbox_config, TENANTS, jwt=jwt_section(jwks_url=idp.url)
    )
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        yield client


def signed(keys: Keys, **changes: Any) -> str:
    """A token of the identity provider's, valid for five minutes, for acme unless changed."""
    return token(keys.signer, "RS256", KID, **changes)


async def post(client: httpx.AsyncClient, query: str, credential: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers=bearer(credential))


def accounts(sandbox: Sandbox, index: int) -> set[str]:
    return {sandbox.account(provider, index) for provider in PROVIDERS}


async def listed(client: httpx.AsyncClient, credential: str) -> list[dict[str, str]]:
    body = (await post(client, LISTING, credential)).json()
    assert "errors" not in body, body
    nodes: list[dict[str, str]] = body["data"]["recordings"]["nodes"]
    return nodes


# --- a trusted token ------------------------------------------------------------------------


async def test_a_token_reads_its_tenants_accounts_only(
    gateway: httpx.AsyncClient, sandbox: Sandbox, keys: Keys
) -> None:
    for tenant, index in (("acme", 0), ("globex", 1)):
        nodes = await listed(gateway, signed(keys, tenant=tenant))
        assert {node["provider"] for node in nodes} == {"TWILIO", "SIGNALWIRE", "BIRD"}
        assert {node["accountId"] for node in nodes} <= accounts(sandbox, index), tenant
    # Another tenant's recording, by its id: acme's accounts do not have it.
    theirs = sandbox.sample_ids(1)["bird"]
    query = f'{{ recording(provider: BIRD, id: "{theirs}") {{ id accountId }} }}'
    body = (await post(gateway, query, signed(keys, tenant="acme"))).json()
    assert body["data"] == {"recording": None}
    assert [error["extensions"]["code"] for error in body["errors"]] == ["NOT_FOUND"]


def media_query(rid: str) -> str:
    return f'{{ recording(provider: BIRD, id: "{rid}") {{ id status mediaUrl }} }}'


async def test_a_token_scoped_to_recordings_gets_no_media_and_the_rest_answers(
    gateway: httpx.AsyncClient, sandbox: Sandbox, keys: Keys
) -> None:
    rid = sandbox.sample_ids(0)["bird"]
    narrow = signed(keys, scope="recordings:read")
    body = (await post(gateway, media_query(rid), narrow)).json()
    assert body["data"] == {"recording": {"id": rid, "status": "COMPLETED", "mediaUrl": None}}
    [error] = body["errors"]
    assert error["path"] == ["recording", "mediaUrl"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    # Without a scope claim the tenant's scopes apply; with both scopes, the link is minted.
    for holder in (signed(keys), signed(keys, scope="recordings:read media:read")):
        body = (await post(gateway, media_query(rid), holder)).json()
        assert "errors" not in body, body
        assert body["data"]["recording"]["mediaUrl"].startswith("http://gateway.test/media/")


async def test_a_token_cannot_add_scopes_its_tenant_lacks(
    gateway: httpx.AsyncClient, sandbox: Sandbox, keys: Keys
) -> None:
    rid = sandbox.sample_ids(0)["bird"]
    wide = signed(keys, tenant="listener", scope="recordings:read media:read")
    body = (await post(gateway, media_query(rid), wide)).json()
    assert body["data"]["recording"]["mediaUrl"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]


async def test_an_api_key_and_a_token_of_one_tenant_both_work(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    by_key = await listed(gateway, ACME_KEY)
    by_token = await listed(gateway, signed(keys))
    assert by_key == by_token and by_key


# --- refused tokens -------------------------------------------------------------------------


def unsigned(**changes: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "tenant": "acme"} | changes
    return hand_made({"alg": "none", "typ": "JWT", "kid": KID}, payload)


REFUSED: dict[str, Any] = {
    "expired": lambda keys: signed(keys, exp=int(time.time()) - 120),
    "not-yet-valid": lambda keys: signed(keys, nbf=int(time.time()) + 120),
    "wrong-audience": lambda keys: signed(keys, aud="another-api"),
    "wrong-issuer": lambda keys: signed(keys, iss="https://evil.example.com/"),
    "alg-none": lambda keys: unsigned(),
    "unknown-tenant": lambda keys: signed(keys, tenant="initech"),
    "no-tenant-claim": lambda keys: signed(keys, tenant=DROP),
    "unpublished-key": lambda keys: token(keys.intruder, "RS256", KID),
    "unknown-kid": lambda keys: token(keys.intruder, "RS256", "rsa-2"),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_an_untrusted_token_is_401_before_any_provider_request(
    gateway: httpx.AsyncClient, sandbox: Sandbox, keys: Keys, case: str
) -> None:
    bad: str = REFUSED[case](keys)
    response = await post(gateway, LISTING, bad)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    [error] = body["errors"]
    assert set(body) == {"errors"} and error["extensions"] == {"code": "UNAUTHENTICATED"}
    assert bad not in response.text
    assert sandbox.requests == []


async def test_an_unknown_tenant_reads_as_any_other_bad_token(
    gateway: httpx.AsyncClient, keys: Keys
) -> None:
    """The refusal of a token naming a tenant the gateway does not serve says nothing of
    which tenants it serves, nor echoes the name."""
    response = await post(gateway, LISTING, signed(keys, tenant="initech"))
    [error] = response.json()["errors"]
    assert error["message"] == "this token is not valid here"


# --- other configurations -------------------------------------------------------------------


async def test_a_token_is_refused_when_no_jwt_is_configured(
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    idp: IdentityProvider,
    keys: Keys,
) -> None:
    env = write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS)
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        response = await post(client, LISTING, signed(keys))
        assert sandbox.requests == []
        assert (await post(client, LISTING, ACME_KEY)).status_code == 200  # keys still work
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert "API key" in error["message"]
    assert idp.fetches == 0


async def test_a_public_key_file_verifies_tokens_without_any_fetch(
    tmp_path: Path,
    sandbox_config: SandboxConfig,
    sandbox_app: Starlette,
    sandbox: Sandbox,
    idp: IdentityProvider,
    keys: Keys,
) -> None:
    key_file = tmp_path / "idp.pem"
    key_file.write_bytes(pem(keys.signer))
    section = jwt_section(public_key_file=str(key_file))
    env = write_config(tmp_path / "gateway.toml", sandbox_config, TENANTS, jwt=section)
    transport = httpx.ASGITransport(app=sandbox_app)
    async with gateway_client(Settings.from_env(env), transport) as client:
        nodes = await listed(client, signed(keys, tenant="globex"))
        sandbox.requests.clear()
        forged = await post(client, LISTING, token(keys.intruder, "RS256", KID, tenant="globex"))
    assert nodes and {node["accountId"] for node in nodes} <= accounts(sandbox, 1)
    assert forged.status_code == 401
    assert sandbox.requests == []
    assert idp.fetches == 0


# --- the key set ----------------------------------------------------------------------------


async def test_the_key_set_is_fetched_once_for_many_requests(
    gateway: httpx.AsyncClient, idp: IdentityProvider, keys: Keys
) -> None:
    """Fifty requests, the first twenty at once (before any key set is there), each with a
    token of its own: one fetch."""
    query = "{ __typename }"
    tokens = [signed(keys, tenant=("acme", "globex")[n % 2], jti=str(n)) for n in range(50)]
    first = await asyncio.gather(*(post(gateway, query, each) for each in tokens[:20]))
    rest = [await post(gateway, query, each) for each in tokens[20:]]
    assert [r.status_code for r in first + rest] == [200] * 50
    assert idp.fetches == 1
