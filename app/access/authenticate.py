"""Who is calling: ``Authorization: Bearer <API key or JWT>`` to a tenant and its scopes.

A token of three dot-separated parts is a JWT (``app.access.jwt``); anything else is an API
key, looked up by its hash (``app.access.keys``). Without any client auth configured (no
tenant has API keys and there is no ``[auth.jwt]``), every caller is the one tenant: the CLI
only allows that on a loopback address or with ``--insecure-no-auth``.

Every failure is UNAUTHENTICATED with a message saying what was wrong with the credentials,
never whether some tenant exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.access.jwt import InvalidTokenError, JwtVerifier
from app.access.keys import KeyRing, key_hash
from app.errors import ConfigError, UnauthenticatedError
from app.settings import Settings
from app.tenants import Tenant, Tenants
from app.upstream import build_transport

#: How many hex digits of an API key's SHA-256 name it in audit lines (``Principal.caller``).
KEY_ID_DIGITS = 12


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the tenant it acts for and the scopes it holds there.

    ``caller`` names who it is in audit lines, never with a credential: ``key:<first 12 hex
    digits of the API key's SHA-256>`` (the start of its ``sha256:`` entry in the config),
    ``jwt:<sub claim>`` (``jwt:-`` without one), or ``anonymous`` when no client auth is
    configured."""

    tenant: Tenant
    scopes: frozenset[str]
    caller: str = "anonymous"


class Authenticator:
    """Turns an ``Authorization`` header into a Principal, or UNAUTHENTICATED."""

    def __init__(
        self,
        tenants: Tenants,
        keys: KeyRing,
        jwt: JwtVerifier | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._tenants = tenants
        self._keys = keys
        self._jwt = jwt
        self._on_close = on_close
        self.required = bool(keys) or jwt is not None
        self._anonymous: Principal | None = None
        if not self.required:
            if len(tenants) != 1:
                raise ConfigError(
                    "several tenants and no client auth: give each tenant api_keys, "
                    "or configure [auth.jwt]"
                )
            (only,) = tenants.values()
            self._anonymous = Principal(only, only.scopes)

    @classmethod
    def from_settings(cls, settings: Settings, tenants: Tenants) -> Authenticator:
        owners = {
            digest: name
            for name, tenant in settings.tenant_settings().items()
            for digest in tenant.api_keys
        }
        if settings.jwt is None:
            return cls(tenants, KeyRing(owners))
        # The identity provider is reached the way providers are (egress proxy, private CA).
        transport = build_transport(settings)
        jwt = JwtVerifier(
            issuer=settings.jwt.issuer,
            audience=settings.jwt.audience,
            tenant_claim=settings.jwt.tenant_claim,
            jwks_url=settings.jwt.jwks_url,
            public_key_pem=settings.jwt.public_key_pem,
            algorithms=settings.jwt.algorithms,
            transport=transport,
            timeout=settings.upstream_timeout,
        )
        return cls(tenants, KeyRing(owners), jwt, on_close=transport.aclose)

    async def aclose(self) -> None:
        if self._jwt is not None:
            await self._jwt.aclose()
        if self._on_close is not None:
            await self._on_close()

    async def authenticate(self, authorization: str | None) -> Principal:
        """The caller named by the ``Authorization`` header's value."""
        if self._anonymous is not None:
            return self._anonymous
        if not authorization:
            raise UnauthenticatedError(
                "credentials required: send Authorization: Bearer <API key or JWT>"
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("use the Bearer scheme: Authorization: Bearer <token>")
        if token.count(".") == 2:
            return await self._from_jwt(token)
        tenant = self._keys.tenant_of(token)
        if tenant is None:
            raise UnauthenticatedError("this API key is not valid")
        found = self._tenants[tenant]
        return Principal(found, found.scopes, f"key:{key_hash(token)[:KEY_ID_DIGITS]}")

    async def _from_jwt(self, token: str) -> Principal:
        if self._jwt is None:
            raise UnauthenticatedError("this gateway accepts no JWTs; send an API key")
        try:
            claims = await self._jwt.verify(token)
        except InvalidTokenError as exc:
            raise UnauthenticatedError(f"this token is not valid: {exc}") from None
        tenant = self._tenants.get(claims.tenant)
        if tenant is None:
            raise UnauthenticatedError("this token is not valid here")
        scopes = tenant.scopes if claims.scopes is None else tenant.scopes & claims.scopes
        return Principal(tenant, scopes, f"jwt:{claims.subject or '-'}")
