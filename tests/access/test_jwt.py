"""JwtVerifier with real keys, and a real JWKS server on loopback that counts its requests.

The key set's cache runs on an injected clock (no sleeps): tests move it past the TTL or the
refetch interval. ``exp`` and ``nbf`` are checked by pyjwt against the system clock, so the
tokens here are minted relative to ``time.time()``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.hashes import SHA256
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access.jwt import (
    CANNOT_FETCH,
    MAX_JWKS_BYTES,
    REFETCH_INTERVAL,
    SUPPORTED_ALGORITHMS,
    InvalidTokenError,
    JwtClaims,
    JwtVerifier,
    VerifiedTokens,
)
from tests.servers import raw_server, serve

pytestmark = pytest.mark.anyio

ISSUER = "https://id.example.com/"
AUDIENCE = "recording-gateway"
TTL = 300.0
DROP: Any = object()  # a claim left out of the token


# --- keys and tokens ----------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa_1: rsa.RSAPrivateKey
    rsa_2: rsa.RSAPrivateKey  # the key the provider rotates to
    ec_1: ec.EllipticCurvePrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa_1=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        rsa_2=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        ec_1=ec.generate_private_key(ec.SECP256R1()),
    )


def public_jwk(key: PrivateKeyTypes, kid: str | None, alg: str | None = None) -> dict[str, Any]:
    """The public JWK of a private key, as an identity provider publishes it."""
    public = key.public_key()
    algorithm: Any
    if isinstance(public, rsa.RSAPublicKey):
        algorithm = jwt.algorithms.RSAAlgorithm
    elif isinstance(public, ec.EllipticCurvePublicKey):
        algorithm = jwt.algorithms.ECAlgorithm
    else:
        algorithm = jwt.algorithms.OKPAlgorithm
    data: dict[str, Any] = json.loads(algorithm.to_jwk(public))
    data["use"] = "sig"
    if kid is not None:
        data["kid"] = kid
    if alg is not None:
        data["alg"] = alg
    return data


def pem(key: PrivateKeyTypes) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def claims(**changes: Any) -> dict[str, Any]:
    """Valid claims for five minutes, with ``changes`` (DROP leaves a claim out)."""
    now = int(time.time())
    base: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "tenant": "acme"}
    return {k: v for k, v in (base | changes).items() if v is not DROP}


def token(
    key: PrivateKeyTypes, alg: str = "RS256", kid: str | None = "rsa-1", **changes: Any
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    signing_key: Any = key
    return jwt.encode(claims(**changes), signing_key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None = None) -> str:
    """A token built by hand: unsigned, or HMAC-SHA256-signed with ``secret``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if secret is None:
        return signing_input + "."
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


# --- the identity provider ------------------------------------------------------------------


@dataclass
class IdentityProvider:
    """What the JWKS endpoint serves, and how many times it was asked."""

    url: str = ""
    jwks: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    body: bytes | None = None  # served as is instead of ``jwks``
    gate: threading.Event | None = None  # when set, answers wait until it opens
    fetches: int = 0  # requests received
    answered: int = 0  # requests answered
    arrived: threading.Event = field(default_factory=threading.Event)  # set by each request
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def publish(self, *jwks: Any) -> None:
        self.jwks = {"keys": list(jwks)}


@pytest.fixture(scope="module")
def identity_provider() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()

    async def jwks(request: Request) -> Response:
        with provider.lock:
            provider.fetches += 1
        provider.arrived.set()
        if provider.gate is not None:
            await asyncio.to_thread(provider.gate.wait, 10)
        with provider.lock:
            provider.answered += 1
        body = provider.body if provider.body is not None else json.dumps(provider.jwks).encode()
        return Response(body, status_code=provider.status, media_type="application/json")

    app = Starlette(routes=[Route("/.well-known/jwks.json", jwks)])
    with serve(app) as url:
        provider.url = url
        yield provider


@pytest.fixture
def idp(identity_provider: IdentityProvider, keys: Keys) -> IdentityProvider:
    """The provider, reset: it publishes rsa-1 (RS256) and ec-1 (ES256)."""
    identity_provider.publish(
        public_jwk(keys.rsa_1, "rsa-1", "RS256"), public_jwk(keys.ec_1, "ec-1", "ES256")
    )
    identity_provider.status, identity_provider.body, identity_provider.gate = 200, None, None
    identity_provider.fetches = identity_provider.answered = 0
    identity_provider.arrived.clear()
    return identity_provider


class Clock:
    """The verifier's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


Make = Callable[..., JwtVerifier]


@pytest.fixture
async def make(idp: IdentityProvider, clock: Clock) -> AsyncIterator[Make]:
    """Makes verifiers of the provider's tokens (given no ``public_key_pem``), closed after
    the test: its JWKS, the issuer and audience here, the TTL and clock above."""
    made: list[JwtVerifier] = []

    def make_verifier(**changes: Any) -> JwtVerifier:
        arguments: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_ttl": TTL,
            "clock": clock,
        }
        if "public_key_pem" not in changes:
            arguments["jwks_url"] = idp.jwks_url
        made.append(JwtVerifier(**(arguments | changes)))
        return made[-1]

    yield make_verifier
    for each in made:
        await each.aclose()


@pytest.fixture
def verifier(make: Make) -> JwtVerifier:
    return make()


async def refused(verifier: JwtVerifier, token: str) -> str:
    """The message the verifier refuses ``token`` with."""
    with pytest.raises(InvalidTokenError) as refusal:
        await verifier.verify(token)
    message = str(refusal.value)
    assert not token or token not in message
    return message


# --- valid tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "alg", "kid"), [("rsa_1", "RS256", "rsa-1"), ("ec_1", "ES256", "ec-1")]
)
async def test_a_valid_token_gives_its_tenant(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, which: str, alg: str, kid: str
) -> None:
    signed = token(getattr(keys, which), alg, kid)
    assert await verifier.verify(signed) == JwtClaims(tenant="acme", scopes=None)
    assert idp.fetches == 1


async def test_the_key_set_is_refreshed_after_its_ttl_without_making_anyone_wait(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    for _ in range(3):
        await verifier.verify(token(keys.rsa_1))
    clock.now += TTL - 1
    await verifier.verify(token(keys.ec_1, "ES256", "ec-1"))
    assert idp.fetches == 1
    idp.publish(public_jwk(keys.rsa_1, "rsa-1", "RS256"), public_jwk(keys.rsa_2, "rsa-2"))
    idp.gate = threading.Event()  # the provider holds its answers until the gate opens
    clock.now += 1
    assert (await verifier.verify(token(keys.rsa_1))).tenant == "acme"
    assert idp.answered == 1, "the cached keys served while the refresh was held"
    idp.gate.set()
    # A key only the new set has: its verification waits for the refresh under way.
    assert (await verifier.verify(token(keys.rsa_2, kid="rsa-2"))).tenant == "acme"
    assert (idp.fetches, idp.answered) == (2, 2)


async def test_an_audience_list_naming_the_gateway_is_accepted(
    verifier: JwtVerifier, keys: Keys
) -> None:
    signed = token(keys.rsa_1, aud=["another-api", AUDIENCE])
    assert (await verifier.verify(signed)).tenant == "acme"


# --- time, issuer, audience, required claims -----------------------------------------------


async def test_expiry_and_not_before_allow_the_leeway_and_no_more(
    verifier: JwtVerifier, keys: Keys
) -> None:
    now = int(time.time())
    await verifier.verify(token(keys.rsa_1, exp=now - 10))  # within the 30 s leeway
    await verifier.verify(token(keys.rsa_1, nbf=now + 10))
    assert await refused(verifier, token(keys.rsa_1, exp=now - 120)) == "token expired"
    assert await refused(verifier, token(keys.rsa_1, nbf=now + 120)) == "token not yet valid"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"iss": "https://evil.example.com/"}, "wrong issuer"),
        ({"aud": "another-api"}, "wrong audience"),
        ({"aud": ["another-api", "a-third"]}, "wrong audience"),
        ({"exp": DROP}, "missing exp claim"),
        ({"iss": DROP}, "missing iss claim"),
        ({"aud": DROP}, "missing aud claim"),
    ],
)
async def test_issuer_audience_and_expiry_are_required_and_checked(
    verifier: JwtVerifier, keys: Keys, changes: dict[str, Any], message: str
) -> None:
    assert await refused(verifier, token(keys.rsa_1, **changes)) == message


# --- algorithms and signatures -------------------------------------------------------------


async def test_alg_none_is_refused_without_fetching_keys(
    verifier: JwtVerifier, idp: IdentityProvider
) -> None:
    for alg in ("none", "None", "NONE"):
        unsigned = hand_made({"alg": alg, "typ": "JWT", "kid": "rsa-1"}, claims())
        assert await refused(verifier, unsigned) == "algorithm not allowed"
    assert idp.fetches == 0


async def test_a_token_signed_with_the_public_key_as_hmac_secret_is_refused(
    verifier: JwtVerifier, make: Make, keys: Keys
) -> None:
    """Key confusion: were HS256 verified with the RSA key's PEM as the secret, anyone
    holding the public key could mint tokens."""
    forged = hand_made({"alg": "HS256", "kid": "rsa-1"}, claims(), secret=pem(keys.rsa_1))
    assert await refused(verifier, forged) == "algorithm not allowed"
    in_pem_mode = make(public_key_pem=pem(keys.rsa_1))
    assert await refused(in_pem_mode, forged) == "algorithm not allowed"


async def test_the_algorithm_must_suit_the_key_the_kid_names(
    make: Make, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    verifier = make(algorithms=("RS256", "PS256", "ES256"))
    # An EC signature under the RSA key's kid: the RSA key verifies no ES256.
    assert await refused(verifier, token(keys.ec_1, "ES256", "rsa-1")) == "algorithm not allowed"
    # The JWK says RS256: the same RSA key does not verify PS256 for it.
    assert await refused(verifier, token(keys.rsa_1, "PS256", "rsa-1")) == "algorithm not allowed"
    # A JWK that names no algorithm verifies every allowed one its key type suits.
    idp.publish(public_jwk(keys.rsa_1, "any-rsa"))
    clock.now += REFETCH_INTERVAL
    assert (await verifier.verify(token(keys.rsa_1, "PS256", "any-rsa"))).tenant == "acme"
    assert (await verifier.verify(token(keys.rsa_1, "RS256", "any-rsa"))).tenant == "acme"


async def test_an_algorithm_not_in_the_allow_list_is_refused(make: Make, keys: Keys) -> None:
    verifier = make(algorithms=("ES256",))
    assert await refused(verifier, token(keys.rsa_1)) == "algorithm not allowed"
    assert (await verifier.verify(token(keys.ec_1, "ES256", "ec-1"))).tenant == "acme"


async def test_a_tampered_token_is_refused(verifier: JwtVerifier, keys: Keys) -> None:
    header, _, signature = token(keys.rsa_1).split(".")
    payload = b64(json.dumps(claims(tenant="someone-else")).encode())
    assert await refused(verifier, f"{header}.{payload}.{signature}") == "signature invalid"
    other = token(keys.rsa_2).split(".")[2]  # signed by a key the provider never published
    assert await refused(verifier, f"{header}.{token(keys.rsa_1).split('.')[1]}.{other}") == (
        "signature invalid"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "a.b.c",
        "a.b",
        "!!!.e30.",
        f"{b64(b'not json')}.e30.",
        f"{b64(b'[1]')}.e30.",
        f"{b64(json.dumps({'alg': 'RS256', 'kid': 7}).encode())}.e30.",
        "x" * 20000,
        "\u00e9.e30.x",
        f"{b64(bytes([0xFF, 0xFE]))}.e30.x",
    ],
)
async def test_malformed_tokens_are_refused(
    verifier: JwtVerifier, idp: IdentityProvider, bad: str
) -> None:
    assert await refused(verifier, bad) == "malformed token"
    assert idp.fetches == 0


async def test_a_payload_that_is_not_json_is_malformed(verifier: JwtVerifier, keys: Keys) -> None:
    header = b64(json.dumps({"alg": "RS256", "kid": "rsa-1"}).encode())
    payload = b64(b"not json")
    signature = b64(keys.rsa_1.sign(f"{header}.{payload}".encode(), PKCS1v15(), SHA256()))
    assert await refused(verifier, f"{header}.{payload}.{signature}") == "malformed token"


# --- which key: kid, rotation, floods -------------------------------------------------------


async def test_a_token_without_kid_works_only_when_the_set_has_one_key(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    assert await refused(verifier, token(keys.rsa_1, kid=None)) == "unknown signing key"
    idp.publish(public_jwk(keys.rsa_1, "rsa-1", "RS256"))
    clock.now += TTL
    assert (await verifier.verify(token(keys.rsa_1, kid=None))).tenant == "acme"


async def test_an_unknown_kid_refetches_once_the_interval_has_passed(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(token(keys.rsa_1))
    idp.publish(public_jwk(keys.rsa_1, "rsa-1", "RS256"), public_jwk(keys.rsa_2, "rsa-2"))
    rotated = token(keys.rsa_2, kid="rsa-2")
    clock.now += REFETCH_INTERVAL - 1
    assert await refused(verifier, rotated) == "unknown signing key"
    assert idp.fetches == 1, "no refetch within the interval"
    clock.now += 1
    assert (await verifier.verify(rotated)).tenant == "acme"
    assert idp.fetches == 2
    await verifier.verify(token(keys.rsa_1))  # the old key still verifies while published
    assert idp.fetches == 2


async def test_a_flood_of_unknown_kids_costs_one_fetch_per_interval(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    await verifier.verify(token(keys.rsa_1))
    clock.now += REFETCH_INTERVAL
    bogus = [token(keys.rsa_1, kid=f"made-up-{n}") for n in range(50)]
    results = await asyncio.gather(*(verifier.verify(t) for t in bogus), return_exceptions=True)
    assert {str(each) for each in results} == {"unknown signing key"}
    for each in bogus:  # one after another, too
        assert await refused(verifier, each) == "unknown signing key"
    assert idp.fetches == 2
    clock.now += REFETCH_INTERVAL
    assert await refused(verifier, bogus[0]) == "unknown signing key"
    assert idp.fetches == 3


async def test_concurrent_verifications_on_a_cold_cache_share_one_fetch(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys
) -> None:
    tokens = [token(keys.rsa_1, tenant=f"t{n}") for n in range(20)]
    tokens += [token(keys.ec_1, "ES256", "ec-1", tenant=f"e{n}") for n in range(20)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens))
    assert [each.tenant for each in results] == [f"t{n}" for n in range(20)] + [
        f"e{n}" for n in range(20)
    ]
    assert idp.fetches == 1


# --- when the identity provider fails -------------------------------------------------------


def refused_url() -> str:
    """A URL nothing listens at (a bound socket that never listens refuses connections)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}/jwks.json"


def fetch_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "app.access.jwt"]


async def test_an_unreachable_provider_refuses_tokens_and_is_tried_once_per_interval(
    make: Make, keys: Keys, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.access.jwt")
    verifier = make(jwks_url=refused_url())
    signed = token(keys.rsa_1)
    results = await asyncio.gather(
        *(verifier.verify(signed) for _ in range(10)), return_exceptions=True
    )
    assert {str(each) for each in results} == {CANNOT_FETCH}
    assert await refused(verifier, signed) == CANNOT_FETCH
    warnings = fetch_warnings(caplog)
    assert len(warnings) == 1, "one failed fetch, one warning"
    assert warnings[0].startswith(CANNOT_FETCH)
    assert signed not in caplog.text and signed.split(".")[2] not in caplog.text
    clock.now += REFETCH_INTERVAL
    assert await refused(verifier, signed) == CANNOT_FETCH
    assert len(fetch_warnings(caplog)) == 2


async def test_a_cached_set_keeps_verifying_while_the_provider_fails(
    verifier: JwtVerifier,
    idp: IdentityProvider,
    keys: Keys,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.access.jwt")
    await verifier.verify(token(keys.rsa_1))
    idp.status = 503
    clock.now += TTL
    assert (await verifier.verify(token(keys.rsa_1))).tenant == "acme"  # and a refresh starts
    # A kid the failed refresh might have brought: refused, saying why. (This waits for the
    # refresh if it is still under way.)
    assert await refused(verifier, token(keys.rsa_2, kid="rsa-2")) == CANNOT_FETCH
    assert idp.fetches == 2
    assert fetch_warnings(caplog) == [f"{CANNOT_FETCH} ({idp.jwks_url}): HTTP 503"]
    # The cached keys keep serving, and the provider is not asked again within the interval.
    assert (await verifier.verify(token(keys.ec_1, "ES256", "ec-1"))).tenant == "acme"
    assert (await verifier.verify(token(keys.rsa_1))).tenant == "acme"
    assert await refused(verifier, token(keys.rsa_2, kid="rsa-2")) == CANNOT_FETCH
    assert idp.fetches == 2
    idp.status = 200
    idp.publish(public_jwk(keys.rsa_1, "rsa-1", "RS256"), public_jwk(keys.rsa_2, "rsa-2"))
    clock.now += REFETCH_INTERVAL
    assert (await verifier.verify(token(keys.rsa_2, kid="rsa-2"))).tenant == "acme"
    assert idp.fetches == 3, "back to normal once the provider answers"
    assert len(fetch_warnings(caplog)) == 1


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (500, b"{}", "HTTP 500"),
        (302, b"", "HTTP 302"),
        (200, b"<html>", "the answer is not JSON"),
        (200, b"\xff\xfe\xfa", "the answer is not JSON"),
        (200, b"[" * 100_000, "maximum recursion depth exceeded"),
        (200, b'{"keys": "none"}', 'not a JWK set (no "keys" list)'),
        (200, b"[]", 'not a JWK set (no "keys" list)'),
        (200, b" " * (MAX_JWKS_BYTES + 1), f"the key set is larger than {MAX_JWKS_BYTES} bytes"),
        (200, b'{"keys": []}', "no key in the set verifies any of ['ES256', 'RS256']"),
    ],
)
async def test_a_bad_answer_is_a_failed_fetch(
    verifier: JwtVerifier,
    idp: IdentityProvider,
    keys: Keys,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: bytes,
    reason: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="app.access.jwt")
    idp.status, idp.body = status, body
    assert await refused(verifier, token(keys.rsa_1)) == CANNOT_FETCH
    [warning] = fetch_warnings(caplog)
    assert warning.startswith(f"{CANNOT_FETCH} ({idp.jwks_url}): {reason}")


async def test_a_provider_that_does_not_answer_times_out(
    make: Make, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.access.jwt")

    def never_answer(connection: socket.socket, over: threading.Event) -> None:
        over.wait()

    with raw_server(never_answer) as silent:
        verifier = make(jwks_url=f"{silent.url}/jwks", timeout=0.2)
        started = time.perf_counter()
        assert await refused(verifier, token(keys.rsa_1)) == CANNOT_FETCH
        assert time.perf_counter() - started < 2
    assert fetch_warnings(caplog) == [f"{CANNOT_FETCH} ({silent.url}/jwks): timed out"]


async def test_the_log_never_shows_user_info_or_query_of_the_jwks_url(
    make: Make, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="app.access.jwt")
    url = refused_url().replace("http://", "http://user:hunter2@") + "?key=sekrit"
    assert await refused(make(jwks_url=url), token(keys.rsa_1)) == CANNOT_FETCH
    assert "hunter2" not in caplog.text and "sekrit" not in caplog.text


async def test_keys_that_cannot_verify_are_skipped(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys
) -> None:
    # A private key published by mistake: not a verification key (it would sign, too).
    private = jwt.algorithms.RSAAlgorithm.to_jwk(keys.rsa_2, as_dict=True) | {"kid": "private"}
    idp.publish(
        {"kty": "oct", "k": b64(b"shared secret"), "kid": "hmac", "alg": "HS256"},
        public_jwk(keys.rsa_2, "for-encryption") | {"use": "enc"},
        public_jwk(keys.rsa_2, "wrong-alg", "RS512"),  # not in the allow-list
        public_jwk(keys.rsa_2, "junk-alg") | {"alg": ["RS256"]},
        public_jwk(keys.rsa_2, "junk-kid") | {"kid": 12},
        {"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"},
        {"kty": "XYZ", "kid": "unknown-type"},
        private,
        "not an object",
        public_jwk(keys.rsa_1, "rsa-1", "RS256"),
    )
    assert (await verifier.verify(token(keys.rsa_1))).tenant == "acme"
    for kid in ("for-encryption", "wrong-alg", "junk-alg", "broken", "unknown-type", "private"):
        assert await refused(verifier, token(keys.rsa_2, kid=kid)) == "unknown signing key"
    forged = hand_made({"alg": "HS256", "kid": "hmac"}, claims(), secret=b"shared secret")
    assert await refused(verifier, forged) == "algorithm not allowed"


# --- one PEM public key ---------------------------------------------------------------------


@pytest.mark.parametrize(("which", "alg"), [("rsa_1", "RS256"), ("ec_1", "ES256")])
async def test_a_pem_public_key_verifies_whatever_the_kid(
    make: Make, idp: IdentityProvider, keys: Keys, which: str, alg: str
) -> None:
    key = getattr(keys, which)
    verifier = make(public_key_pem=pem(key))
    for kid in (None, "anything"):
        assert (await verifier.verify(token(key, alg, kid))).tenant == "acme"
    other = keys.rsa_2 if which == "rsa_1" else ec.generate_private_key(ec.SECP256R1())
    assert await refused(verifier, token(other, alg)) == "signature invalid"
    wrong_type = keys.ec_1 if which == "rsa_1" else keys.rsa_1
    assert await refused(verifier, token(wrong_type, "ES256" if which == "rsa_1" else "RS256")) == (
        "algorithm not allowed"
    )
    assert idp.fetches == 0


def private_key_for(alg: str, keys: Keys) -> PrivateKeyTypes:
    if alg.startswith(("RS", "PS")):
        return keys.rsa_1
    curves: dict[str, ec.EllipticCurve] = {
        "ES256": ec.SECP256R1(),
        "ES384": ec.SECP384R1(),
        "ES512": ec.SECP521R1(),
        "ES256K": ec.SECP256K1(),
    }
    if alg in curves:
        return ec.generate_private_key(curves[alg])
    assert alg == "EdDSA"
    return ed25519.Ed25519PrivateKey.generate()


@pytest.mark.parametrize("alg", sorted(SUPPORTED_ALGORITHMS))
async def test_pyjwt_verifies_every_algorithm_a_verifier_may_allow(keys: Keys, alg: str) -> None:
    """SUPPORTED_ALGORITHMS names pyjwt's asymmetric algorithms: each one must verify."""
    key = private_key_for(alg, keys)
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_key_pem=pem(key), algorithms=(alg,)
    )
    assert (await verifier.verify(token(key, alg))).tenant == "acme"


async def test_ed448_is_eddsa_too(keys: Keys) -> None:
    key = ed448.Ed448PrivateKey.generate()
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, public_key_pem=pem(key), algorithms=("EdDSA",)
    )
    assert (await verifier.verify(token(key, "EdDSA"))).tenant == "acme"


# --- tenant and scopes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "scopes"),
    [
        ({}, None),
        ({"scope": "recordings:read media:read"}, {"recordings:read", "media:read"}),
        ({"scope": "  recordings:read   "}, {"recordings:read"}),
        ({"scope": ""}, set()),
        ({"scp": ["recordings:read", "media:read"]}, {"recordings:read", "media:read"}),
        ({"scp": "recordings:read media:read"}, {"recordings:read", "media:read"}),
        ({"scp": []}, set()),
        ({"scope": "recordings:read", "scp": ["media:read"]}, {"recordings:read", "media:read"}),
    ],
)
async def test_scopes_come_from_scope_and_scp(
    verifier: JwtVerifier, keys: Keys, changes: dict[str, Any], scopes: set[str] | None
) -> None:
    verified = await verifier.verify(token(keys.rsa_1, **changes))
    assert verified.scopes == (None if scopes is None else frozenset(scopes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scope": ["recordings:read"]}, "invalid scope claim"),
        ({"scope": 1}, "invalid scope claim"),
        ({"scp": ["recordings:read", 2]}, "invalid scp claim"),
        ({"scp": {"recordings:read": True}}, "invalid scp claim"),
    ],
)
async def test_scopes_of_another_shape_are_refused(
    verifier: JwtVerifier, keys: Keys, changes: dict[str, Any], message: str
) -> None:
    assert await refused(verifier, token(keys.rsa_1, **changes)) == message


@pytest.mark.parametrize(
    ("tenant", "message"),
    [
        (DROP, "no tenant claim"),
        ("", "no tenant claim"),
        (None, "no tenant claim"),
        (42, "invalid tenant claim"),
        (["acme"], "invalid tenant claim"),
    ],
)
async def test_the_tenant_claim_must_be_a_non_empty_string(
    verifier: JwtVerifier, keys: Keys, tenant: Any, message: str
) -> None:
    assert await refused(verifier, token(keys.rsa_1, tenant=tenant)) == message


async def test_the_tenant_claim_is_configurable(make: Make, keys: Keys) -> None:
    claim = "https://gateway.example.com/tenant"
    verifier = make(tenant_claim=claim)
    verified = await verifier.verify(token(keys.rsa_1, **{claim: "globex"}))
    assert verified == JwtClaims(tenant="globex", scopes=None)
    assert await refused(verifier, token(keys.rsa_1)) == "no tenant claim"  # "tenant" is not it


# --- verified tokens are remembered ---------------------------------------------------------


CLAIMS = JwtClaims(tenant="acme", scopes=frozenset({"recordings:read"}))


def test_a_verified_token_is_remembered_until_it_expires(clock: Clock) -> None:
    remembered = VerifiedTokens(clock)
    remembered.put("a.b.c", CLAIMS, expires_at=clock.now + 60)
    remembered.put("d.e.f", CLAIMS, expires_at=clock.now)  # expired already: not kept
    assert remembered.get("a.b.c") == CLAIMS
    assert remembered.get("d.e.f") is None
    assert remembered.get("a.b.x") is None
    clock.now += 59
    assert remembered.get("a.b.c") == CLAIMS
    clock.now += 1
    assert remembered.get("a.b.c") is None
    assert len(remembered) == 0


def test_remembered_tokens_are_bounded_the_oldest_dropped_first(clock: Clock) -> None:
    remembered = VerifiedTokens(clock, max_entries=2)
    for name in ("t1", "t2", "t3"):
        remembered.put(name, CLAIMS, expires_at=clock.now + 60)
    assert [remembered.get(name) for name in ("t1", "t2", "t3")] == [None, CLAIMS, CLAIMS]
    assert len(remembered) == 2
    assert VerifiedTokens(clock, max_entries=0).get("\ud800") is None  # any str: no error


async def test_a_remembered_token_is_refused_once_the_provider_drops_its_key(
    verifier: JwtVerifier, idp: IdentityProvider, keys: Keys, clock: Clock
) -> None:
    """Remembering a token never outlives the key that signed it: a hit past the key set's
    TTL refreshes it, and a new set empties what was remembered."""
    signed = token(keys.rsa_1)
    for _ in range(3):
        assert (await verifier.verify(signed)).tenant == "acme"
    assert idp.fetches == 1
    idp.publish(public_jwk(keys.rsa_2, "rsa-2", "RS256"))  # rsa-1 is withdrawn
    idp.arrived.clear()
    clock.now += TTL
    assert (await verifier.verify(signed)).tenant == "acme"  # the old set serves meanwhile
    assert await asyncio.to_thread(idp.arrived.wait, 10), "the remembered token's use refreshed"
    # A token of the new key waits for the refresh under way (or finds its key installed).
    assert (await verifier.verify(token(keys.rsa_2, kid="rsa-2"))).tenant == "acme"
    assert await refused(verifier, signed) == "unknown signing key"
    assert idp.fetches == 2


async def test_a_refused_token_is_not_remembered(verifier: JwtVerifier, keys: Keys) -> None:
    wrong = token(keys.rsa_1, aud="another-api")
    for _ in range(2):
        assert await refused(verifier, wrong) == "wrong audience"


# --- construction ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "algorithms", [("HS256",), ("RS256", "HS512"), ("none",), ("RS256", "None")]
)
def test_hmac_and_none_cannot_be_allowed(keys: Keys, algorithms: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="never allowed"):
        JwtVerifier(
            issuer=ISSUER, audience=AUDIENCE, public_key_pem=pem(keys.rsa_1), algorithms=algorithms
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"public_key_pem": None}, "exactly one of jwks_url and public_key_pem"),
        ({"jwks_url": "https://id.example.com/jwks"}, "exactly one"),
        ({"algorithms": ()}, "non-empty list"),
        ({"algorithms": "RS256"}, "non-empty list"),
        ({"algorithms": ("RS257",)}, "unsupported algorithm 'RS257'"),
        ({"algorithms": ("ES384",)}, "verifies none of the algorithms"),
        ({"public_key_pem": b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}, "PEM"),
        ({"public_key_pem": b"not a key"}, "not a PEM public key"),
        ({"issuer": ""}, "issuer must be a non-empty string"),
        ({"audience": ""}, "audience must be a non-empty string"),
        ({"tenant_claim": ""}, "tenant_claim must be a non-empty string"),
        ({"leeway": -1}, "leeway"),
        ({"timeout": 0}, "timeout"),
    ],
)
def test_a_bad_configuration_is_a_value_error(
    keys: Keys, changes: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "public_key_pem": pem(keys.ec_1),
    } | changes
    with pytest.raises(ValueError, match=message):
        JwtVerifier(**arguments)


def test_a_short_rsa_key_is_refused() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="shorter than 2048 bits"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, public_key_pem=pem(short))


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://id.example.com/.well-known/jwks.json", True),
        ("http://127.0.0.1:8080/jwks", True),
        ("http://[::1]:8080/jwks", True),
        ("http://localhost/jwks", True),
        ("http://id.example.com/jwks", False),
        ("ftp://id.example.com/jwks", False),
        ("/jwks.json", False),
    ],
)
async def test_the_jwks_url_is_https_or_loopback(make: Make, url: str, accepted: bool) -> None:
    """The key set decides whom the gateway trusts: it never travels in clear over a network."""
    if accepted:
        make(jwks_url=url)
    else:
        with pytest.raises(ValueError, match="https"):
            make(jwks_url=url)


async def test_a_transport_passed_in_is_borrowed_not_closed(
    make: Make, idp: IdentityProvider, keys: Keys
) -> None:
    shared = httpx.AsyncHTTPTransport()
    verifier = make(transport=shared)
    await verifier.verify(token(keys.rsa_1))
    await verifier.aclose()
    async with httpx.AsyncClient(transport=shared) as client:  # closes it
        assert (await client.get(idp.jwks_url)).status_code == 200
    assert idp.fetches == 2
