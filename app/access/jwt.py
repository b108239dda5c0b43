"""Bearer JWTs from an identity provider: whose key signed them, and which tenant they name.

A token is trusted when a key of the identity provider's (from its JWKS, or one PEM public
key) signed it with an asymmetric algorithm from the allow-list, it has not expired and is
already valid (``exp`` required, ``nbf``; ``leeway`` seconds of clock skew), its ``iss`` is
the configured issuer and its ``aud`` names the gateway, and it carries a tenant. pyjwt
checks the token; this module chooses the key and keeps the key set.

The algorithm is bound to the key, never taken from the token: each key may verify only the
allowed algorithms that suit it (an RSA key RS*/PS*, an EC key the ES* of its curve, an
Ed25519/Ed448 key EdDSA, and only the JWK's own ``alg`` when it states one), and pyjwt is
given that list. HMAC algorithms and ``none`` are refused outright, even when configured:
with a public key taken as an HMAC secret, anyone could sign (key confusion).

Why not pyjwt's ``PyJWKClient``: it fetches with blocking ``urllib`` inside the event loop.
The JWKS is fetched here over an httpx transport (the caller's, so its egress proxy and CA
apply; a transport passed in is borrowed, never closed) and parsed with ``jwt.PyJWK``.

The key set is cached for ``jwks_ttl`` seconds; past that, its keys keep serving while a
refresh runs in the background, so a slow provider never holds requests up. A token whose
``kid`` is not in the set waits for a fetch (the provider rotated its keys), but there is at
most one fetch per ``REFETCH_INTERVAL`` whatever the reason, so a flood of made-up kids, or
a provider that is down, costs the provider one request per 30 s (a ``jwks_ttl`` below that
acts as 30 s); concurrent verifications share one fetch. When a fetch fails, the set fetched
before stays in use; with none, tokens are refused.

A token verified once is remembered, by its SHA-256 (never the token itself), until it
expires (``exp`` plus the leeway, on ``clock``): a client sends the same token with every
request, and verifying an RS256 signature took 50-90 µs of the gateway's ~500 µs for a cached
``recording`` (tests/perf/README.md). The memory is bounded (``MAX_VERIFIED`` tokens, the
oldest dropped first) and emptied whenever a key set is installed, so a token is only ever
accepted while a key of the current set would verify it (a provider that removes a key
revokes its tokens at the next fetch, as before). Only what the gateway takes from a token
is kept (``JwtClaims``); refused tokens are not remembered.

The messages of ``InvalidTokenError`` go to the client: short and fixed, never carrying the
token nor anything read from it (a ``kid`` included). Only a failed fetch is logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.settings import is_loopback
from app.upstream.client import USER_AGENT

logger = logging.getLogger("app.access.jwt")

_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
#: The one ES* algorithm each elliptic curve verifies (by cryptography's curve name).
_EC_ALGORITHMS = {
    "secp256r1": "ES256",
    "secp384r1": "ES384",
    "secp521r1": "ES512",
    "secp256k1": "ES256K",
}
#: Every algorithm a verifier may allow: pyjwt's asymmetric ones.
SUPPORTED_ALGORITHMS = _RSA_ALGORITHMS | set(_EC_ALGORITHMS.values()) | {"EdDSA"}

#: The shortest spacing between two fetches of the key set, whatever prompts them.
REFETCH_INTERVAL = 30.0
#: The largest JWKS body read (real ones are a few KiB).
MAX_JWKS_BYTES = 1 << 20
#: The longest token looked at (real ones are a few KiB, even with many claims).
MAX_TOKEN_CHARS = 16384
#: How many verified tokens are remembered (a few hundred bytes each).
MAX_VERIFIED = 10_000
#: RSA keys shorter than this verify nothing (RFC 7518 asks for 2048 bits).
MIN_RSA_BITS = 2048

CANNOT_FETCH = "cannot fetch the identity provider's keys"

_PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


@dataclass(frozen=True)
class JwtClaims:
    """What the gateway takes from a verified token."""

    #: The value of the tenant claim.
    tenant: str
    #: From ``scope`` (space-separated) and ``scp`` (a list, or space-separated); None when
    #: the token has neither claim.
    scopes: frozenset[str] | None
    #: The ``sub`` claim (who the token was issued to: what audit lines name), if any.
    subject: str | None = None


class InvalidTokenError(Exception):
    """The token is not trusted; the message says why and is safe to show the client."""


@dataclass(frozen=True)
class _Key:
    """A verification key and the algorithms it may verify (never empty)."""

    key: _PublicKey
    algorithms: tuple[str, ...]


class _KeySet:
    """The usable keys of a JWKS, found by ``kid``."""

    def __init__(self, keys: Sequence[tuple[str | None, _Key]]) -> None:
        self._keys = keys

    def find(self, kid: str | None) -> list[_Key]:
        """The keys with this ``kid``; without one, the only key when there is just one."""
        if kid is None:
            return [self._keys[0][1]] if len(self._keys) == 1 else []
        return [key for each, key in self._keys if each == kid]


class VerifiedTokens:
    """Tokens verified already, by SHA-256, each until it expires on ``clock``; at most
    ``max_entries``, the oldest dropped first."""

    def __init__(self, clock: Callable[[], float], max_entries: int = MAX_VERIFIED) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[bytes, tuple[float, JwtClaims]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> JwtClaims | None:
        key = _digest(token)
        found = self._entries.get(key)
        if found is None:
            return None
        expires_at, claims = found
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return claims

    def put(self, token: str, claims: JwtClaims, expires_at: float) -> None:
        if self._clock() >= expires_at or self._max_entries <= 0:
            return
        key = _digest(token)
        self._entries.pop(key, None)
        while len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]  # dicts keep insertion order
        self._entries[key] = (expires_at, claims)

    def clear(self) -> None:
        self._entries.clear()


def _digest(token: str) -> bytes:
    # surrogatepass: every str encodes, and two different strings never to the same bytes.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _FetchError(Exception):
    """The identity provider's answer is not a usable key set (the reason, for the log)."""


class JwtVerifier:
    """Verifies bearer JWTs against one issuer's keys (its JWKS, or one PEM public key).

    ``clock`` times the key set's cache (``jwks_ttl``, ``REFETCH_INTERVAL``) and how long a
    verified token is remembered (``exp`` plus ``leeway``); a token's ``exp`` and ``nbf`` are
    checked by pyjwt against the system clock when it is verified.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        tenant_claim: str = "tenant",
        jwks_url: str | None = None,
        public_key_pem: bytes | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway: float = 30,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 5.0,
        jwks_ttl: float = 300,
        clock: Callable[[], float] = time.time,
        max_verified: int = MAX_VERIFIED,
    ) -> None:
        for name, value in (
            ("issuer", issuer),
            ("audience", audience),
            ("tenant_claim", tenant_claim),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        if (jwks_url is None) == (public_key_pem is None):
            raise ValueError("give exactly one of jwks_url and public_key_pem")
        if leeway < 0 or timeout <= 0 or jwks_ttl < 0:
            raise ValueError("leeway and jwks_ttl must be >= 0, timeout > 0")
        self._algorithms = _allow_list(algorithms)
        self._issuer = issuer
        self._audience = audience
        self._tenant_claim = tenant_claim
        self._leeway = leeway
        self._timeout = timeout
        self._jwks_ttl = jwks_ttl
        self._clock = clock
        self._jwks_url = None if jwks_url is None else _checked_jwks_url(jwks_url)
        self._owns_transport = transport is None and jwks_url is not None
        self._transport = httpx.AsyncHTTPTransport() if self._owns_transport else transport
        self._pem_keys = (
            None if public_key_pem is None else [_pem_key(public_key_pem, self._algorithms)]
        )
        self._key_set: _KeySet | None = None
        self._expires_at = float("-inf")
        self._next_fetch_at = float("-inf")
        self._fetching: asyncio.Task[None] | None = None
        self._fetch_failed = False  # the last fetch, so a kid it might have brought is unknown
        self._verified = VerifiedTokens(clock, max_verified)

    async def verify(self, token: str) -> JwtClaims:
        """The claims of a trusted token, or InvalidTokenError saying why not."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            raise InvalidTokenError("malformed token")
        known = self._verified.get(token)
        if known is not None:
            self._refresh_if_stale()  # so that a key the provider removed stops serving
            return known
        header = _unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidTokenError("algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise InvalidTokenError("malformed token")
        keys = [key for key in await self._keys(kid) if alg in key.algorithms]
        if not keys:
            raise InvalidTokenError("algorithm not allowed")
        try:
            claims = jwt.decode(
                token,
                keys[0].key,
                algorithms=keys[0].algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(_message(exc)) from None
        subject = claims.get("sub")
        verified = JwtClaims(
            tenant=self._tenant(claims),
            scopes=_scopes(claims),
            subject=subject if isinstance(subject, str) and subject else None,
        )
        # pyjwt has checked that exp reads as an integer (it may be a numeric string).
        self._verified.put(token, verified, expires_at=int(claims["exp"]) + self._leeway)
        return verified

    async def aclose(self) -> None:
        """Stop a fetch under way, and close the transport if this verifier made it."""
        if self._fetching is not None:
            self._fetching.cancel()
        if self._owns_transport and self._transport is not None:
            await self._transport.aclose()

    def _tenant(self, claims: Mapping[str, Any]) -> str:
        tenant = claims.get(self._tenant_claim)
        if tenant is None or tenant == "":
            raise InvalidTokenError("no tenant claim")
        if not isinstance(tenant, str):
            raise InvalidTokenError("invalid tenant claim")
        return tenant

    # --- the key set --------------------------------------------------------------------

    async def _keys(self, kid: str | None) -> list[_Key]:
        """The keys that may have signed a token with this ``kid`` (fetched when needed)."""
        if self._pem_keys is not None:  # one key: the kid says nothing
            return self._pem_keys
        found = self._find(kid)
        if found:
            self._refresh_if_stale()
            return found
        fetching = self._fetch_started()
        if fetching is not None:
            # Shielded: a caller that gives up does not cancel the fetch others wait for.
            await asyncio.shield(fetching)
            found = self._find(kid)
            if found:
                return found
        if self._key_set is None or self._fetch_failed:
            raise InvalidTokenError(CANNOT_FETCH)
        raise InvalidTokenError("unknown signing key")

    def _refresh_if_stale(self) -> None:
        """Past the key set's TTL, a refresh in the background: its keys serve meanwhile."""
        if self._jwks_url is not None and self._clock() >= self._expires_at:
            self._fetch_started()

    def _find(self, kid: str | None) -> list[_Key]:
        return self._key_set.find(kid) if self._key_set is not None else []

    def _fetch_started(self) -> asyncio.Task[None] | None:
        """The fetch under way; one is started if none is and the last began long enough ago."""
        now = self._clock()
        if self._fetching is None and now >= self._next_fetch_at:
            self._next_fetch_at = now + REFETCH_INTERVAL
            self._fetching = asyncio.create_task(self._fetch_and_keep())
        return self._fetching

    async def _fetch_and_keep(self) -> None:
        try:
            key_set = await self._fetch()
        except (
            _FetchError,
            httpx.HTTPError,
            OSError,
            TimeoutError,
            ValueError,
            RecursionError,
        ) as exc:
            logger.warning("%s (%s): %s", CANNOT_FETCH, self._safe_url(), _reason(exc))
            self._fetch_failed = True
            return
        finally:
            self._fetching = None
        self._key_set, self._fetch_failed = key_set, False
        self._verified.clear()  # each token is verified again, against the keys now served
        self._expires_at = self._clock() + self._jwks_ttl

    async def _fetch(self) -> _KeySet:
        assert self._jwks_url is not None and self._transport is not None
        request = httpx.Request(
            "GET",
            self._jwks_url,
            headers={"accept": "application/json", "user-agent": USER_AGENT},
            extensions={"timeout": httpx.Timeout(self._timeout).as_dict()},
        )
        async with asyncio.timeout(self._timeout):  # the whole exchange, a slow body included
            response = await self._transport.handle_async_request(request)
            try:
                if response.status_code != 200:
                    raise _FetchError(f"HTTP {response.status_code}")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _FetchError(f"the key set is larger than {MAX_JWKS_BYTES} bytes")
            finally:
                await response.aclose()
        return _parse_key_set(bytes(body), self._algorithms)

    def _safe_url(self) -> str:
        """The JWKS URL for the log: no user info, no query."""
        url = httpx.URL(self._jwks_url or "")
        return str(url.copy_with(userinfo=b"", query=None, fragment=None))


def _unverified_header(token: str) -> dict[str, Any]:
    """The token's header, read only to choose the key: ``jwt.decode`` reads and checks the
    whole token again. (``jwt.get_unverified_header`` decodes the signature too, checking each
    character in Python since pyjwt 2.15: an RS256 verification took 73 µs with it, 52 without.)
    """
    segment, _, rest = token.partition(".")
    if rest.count(".") != 1:
        raise InvalidTokenError("malformed token")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, RecursionError):  # not base64, not UTF-8, not JSON
        raise InvalidTokenError("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidTokenError("malformed token")
    return header


def _allow_list(algorithms: Sequence[str]) -> frozenset[str]:
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("algorithms must be a non-empty list of algorithm names")
    for alg in algorithms:
        if not isinstance(alg, str):
            raise ValueError(f"algorithm names are strings, not {alg!r}")
        if alg.lower() == "none" or alg.upper().startswith("HS"):
            raise ValueError(
                f"algorithm {alg!r} is never allowed: only asymmetric algorithms verify tokens"
            )
        if alg not in SUPPORTED_ALGORITHMS:
            raise ValueError(
                f"unsupported algorithm {alg!r} (one of {sorted(SUPPORTED_ALGORITHMS)})"
            )
    return frozenset(algorithms)


def _checked_jwks_url(url: str) -> str:
    """The URL, if https (or http to a loopback address): the key set is the root of trust."""
    parsed = httpx.URL(url)
    if parsed.scheme == "https" and parsed.host:
        return url
    if parsed.scheme == "http" and is_loopback(parsed.host):
        return url
    raise ValueError("jwks_url must be an https URL (http only to a loopback address)")


def _algorithms_for(key: object) -> frozenset[str]:
    """The algorithms a public key suits (none for a private key or a short RSA key)."""
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS if key.key_size >= MIN_RSA_BITS else frozenset()
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    if isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return frozenset({"EdDSA"})
    return frozenset()


def _pem_key(pem: bytes, allowed: frozenset[str]) -> _Key:
    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise ValueError("public_key_pem is not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise ValueError(f"the RSA public key is shorter than {MIN_RSA_BITS} bits")
    algorithms = _algorithms_for(key) & allowed
    if not algorithms or not isinstance(key, _PublicKey):
        raise ValueError(f"the public key verifies none of the algorithms {sorted(allowed)}")
    return _Key(key, tuple(sorted(algorithms)))


def _parse_key_set(body: bytes, allowed: frozenset[str]) -> _KeySet:
    """The signing keys of a JWKS that verify an allowed algorithm; others are skipped."""
    document = json.loads(body)
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise _FetchError('not a JWK set (no "keys" list)')
    usable: list[tuple[str | None, _Key]] = []
    for each in keys:
        if not isinstance(each, dict) or each.get("use", "sig") != "sig":
            continue  # an encryption key, or not a JWK at all
        kid, alg = each.get("kid"), each.get("alg")
        if not isinstance(kid, str | None) or not isinstance(alg, str | None):
            continue
        try:
            jwk = jwt.PyJWK(each)
        except (jwt.PyJWTError, TypeError, ValueError):  # a key pyjwt cannot read
            continue
        algorithms = _algorithms_for(jwk.key) & allowed
        if alg is not None:  # the key's owner says which one algorithm it is for
            algorithms &= {alg}
        if algorithms and isinstance(jwk.key, _PublicKey):
            usable.append((kid, _Key(jwk.key, tuple(sorted(algorithms)))))
    if not usable:
        raise _FetchError(f"no key in the set verifies any of {sorted(allowed)}")
    return _KeySet(usable)


def _scopes(claims: Mapping[str, Any]) -> frozenset[str] | None:
    scopes: frozenset[str] | None = None
    for name in ("scope", "scp"):
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, str):
            found = frozenset(value.split())
        elif name == "scp" and isinstance(value, list) and all(isinstance(v, str) for v in value):
            found = frozenset(v for v in value if v)
        else:
            raise InvalidTokenError(f"invalid {name} claim")
        scopes = found if scopes is None else scopes | found
    return scopes


#: pyjwt's verdicts, as the client reads them (first match wins: some are subclasses).
_MESSAGES: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidSignatureError, "signature invalid"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
)


def _message(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing {exc.claim} claim"  # one of the names required above
    for kind, message in _MESSAGES:
        if isinstance(exc, kind):
            return message
    return "invalid token"


def _reason(exc: Exception) -> str:
    """Why a fetch failed, for the log."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, json.JSONDecodeError | UnicodeDecodeError):
        return "the answer is not JSON"
    return str(exc) or type(exc).__name__
