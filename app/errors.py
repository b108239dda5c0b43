"""The gateway's exceptions.

Every error a client can see is a ``GatewayError`` and carries a stable ``code``
(sent as ``extensions.code``)::

    GatewayError
    ├── ConfigError                      (start-up only; never reaches a client)
    ├── RequestRefusedError              (before GraphQL runs: an HTTP status of its own)
    │   ├── UnauthenticatedError         UNAUTHENTICATED     -> 401 (+ WWW-Authenticate)
    │   ├── BadRequestError              BAD_REQUEST         -> 400 (not a GraphQL request)
    │   ├── MethodNotAllowedError        METHOD_NOT_ALLOWED  -> 405 (+ Allow)
    │   ├── PayloadTooLargeError         PAYLOAD_TOO_LARGE   -> 413
    │   ├── PersistedQueryNotFoundError      PERSISTED_QUERY_NOT_FOUND     -> 200 (resend it)
    │   ├── PersistedQueryNotSupportedError  PERSISTED_QUERY_NOT_SUPPORTED -> 200 (APQ off)
    │   ├── PersistedQueryNotAllowedError    PERSISTED_QUERY_NOT_ALLOWED   -> 400 (allowlist)
    │   └── PersistedQueryInvalidError       BAD_USER_INPUT -> 400 (hash is not the query's)
    ├── ForbiddenError                   FORBIDDEN (the caller's scopes do not allow a field)
    ├── CostLimitExceededError           COST_LIMIT_EXCEEDED (+ cost, maxCost)
    ├── StatsTooLargeError               STATS_TOO_LARGE (+ provider, maxPages)
    ├── RateLimitExceededError           RATE_LIMITED        -> 429 (+ retryAfter)
    ├── BadUserInputError                BAD_USER_INPUT
    ├── ProviderNotConfiguredError       PROVIDER_NOT_CONFIGURED
    ├── RecordingNotFoundError           NOT_FOUND
    ├── MediaDirectUnavailableError      MEDIA_DIRECT_UNAVAILABLE (no credential-free link)
    ├── UnsupportedByProviderError       UNSUPPORTED_BY_PROVIDER (no such operation there)
    ├── MediaLinkError                   (GET /media/{token} only; never a GraphQL error)
    │   ├── MediaLinkInvalidError        MEDIA_LINK_INVALID  -> 403 (bad or tampered token)
    │   ├── MediaLinkExpiredError        MEDIA_LINK_EXPIRED  -> 410
    │   └── MediaLinkGoneError           MEDIA_LINK_UNKNOWN  -> 403 (tenant or account gone)
    ├── RangeNotSatisfiableError         RANGE_NOT_SATISFIABLE -> 416 (+ the full size)
    └── ProviderError                    (an upstream provider misbehaved)
        ├── ProviderAuthError            PROVIDER_AUTH_FAILED
        ├── RateLimitedError             PROVIDER_RATE_LIMITED (+ retryAfter)
        ├── ProviderUnavailableError     PROVIDER_UNAVAILABLE (timeout, connection, 5xx)
        └── MalformedProviderResponseError  PROVIDER_BAD_RESPONSE

Anything else raised while resolving a query is unexpected: it is logged with its
traceback and masked as ``INTERNAL_SERVER_ERROR`` (see ``app.schema.errors``).

Messages never contain credentials: adapters build them from status codes, vendor
error codes and the provider's own error message, never from request headers.
"""

from __future__ import annotations

from typing import Any, ClassVar

from app.models import Provider


class GatewayError(Exception):
    """Base class: an expected error with a machine-readable code."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, provider: Provider | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider

    @property
    def extensions(self) -> dict[str, Any]:
        """The ``extensions`` object of the GraphQL error built from this exception."""
        extensions: dict[str, Any] = {"code": self.code}
        if self.provider is not None:
            extensions["provider"] = self.provider.name
        if self.retryable:
            extensions["retryable"] = True
        return extensions


class ConfigError(GatewayError):
    """The environment does not describe a usable gateway (raised at start-up)."""

    code = "CONFIG_ERROR"


class RequestRefusedError(GatewayError):
    """The request is refused before GraphQL looks at it; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400


class UnauthenticatedError(RequestRefusedError):
    """No credentials, or credentials the gateway does not accept (the message says which
    way they failed, never whether a tenant exists)."""

    code = "UNAUTHENTICATED"
    status = 401


class BadRequestError(RequestRefusedError):
    """The body is not a GraphQL request: not JSON, not UTF-8, not an object."""

    code = "BAD_REQUEST"
    status = 400


class MethodNotAllowedError(RequestRefusedError):
    """``/graphql`` takes GET (queries, and the GraphiQL page) and POST only."""

    code = "METHOD_NOT_ALLOWED"
    status = 405


class PayloadTooLargeError(RequestRefusedError):
    """The body is over ``GATEWAY_MAX_BODY_BYTES``."""

    code = "PAYLOAD_TOO_LARGE"
    status = 413


class PersistedQueryNotFoundError(RequestRefusedError):
    """APQ: the hash names no query the gateway holds. HTTP 200 with this exact message, as
    Apollo Server answers: Apollo Client's persisted-query link then resends the request
    with its query (on a 400 or 500 it would turn persisted queries off instead)."""

    code = "PERSISTED_QUERY_NOT_FOUND"
    status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotFound")


class PersistedQueryNotSupportedError(RequestRefusedError):
    """A hash without a query while ``GATEWAY_PERSISTED_QUERIES=off``. HTTP 200 and Apollo's
    message: its link then stops sending hashes and resends the query."""

    code = "PERSISTED_QUERY_NOT_SUPPORTED"
    status = 200

    def __init__(self) -> None:
        super().__init__("PersistedQueryNotSupported")


class PersistedQueryNotAllowedError(RequestRefusedError):
    """``GATEWAY_PERSISTED_QUERIES=allowlist``: the operation is not in the manifest."""

    code = "PERSISTED_QUERY_NOT_ALLOWED"
    status = 400


class PersistedQueryInvalidError(RequestRefusedError):
    """A ``persistedQuery`` extension the gateway cannot use: a hash that is not its query's
    SHA-256, an unknown version, a malformed hash (Apollo Server: BAD_USER_INPUT, 400)."""

    code = "BAD_USER_INPUT"
    status = 400


class ForbiddenError(GatewayError):
    """The caller's scopes do not allow this field."""

    code = "FORBIDDEN"


class CostLimitExceededError(GatewayError):
    """The request's estimated upstream cost is over ``GATEWAY_MAX_COST``."""

    code = "COST_LIMIT_EXCEEDED"

    def __init__(self, message: str, *, cost: int, max_cost: int) -> None:
        super().__init__(message)
        self.cost = cost
        self.max_cost = max_cost

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "cost": self.cost, "maxCost": self.max_cost}


class StatsTooLargeError(GatewayError):
    """``recordingStats`` would read more than ``GATEWAY_STATS_MAX_PAGES`` pages of a provider
    (what its cost was estimated at): that provider's figures are left out."""

    code = "STATS_TOO_LARGE"

    def __init__(self, message: str, *, provider: Provider, max_pages: int) -> None:
        super().__init__(message, provider=provider)
        self.max_pages = max_pages

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "maxPages": self.max_pages}


class RateLimitExceededError(GatewayError):
    """The tenant has spent its rate limit; ``retry_after`` seconds until this request fits."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "retryAfter": self.retry_after}


class BadUserInputError(GatewayError):
    """The client sent an argument the gateway refuses before calling anyone."""

    code = "BAD_USER_INPUT"


class ProviderNotConfiguredError(GatewayError):
    """The query names a provider this gateway has no credentials for."""

    code = "PROVIDER_NOT_CONFIGURED"


class RecordingNotFoundError(GatewayError):
    """The provider says there is no such recording in the configured account."""

    code = "NOT_FOUND"


class MediaDirectUnavailableError(GatewayError):
    """The provider has no link to the media that works without the gateway's credentials."""

    code = "MEDIA_DIRECT_UNAVAILABLE"


class UnsupportedByProviderError(GatewayError):
    """The provider's API offers no way to do what was asked (e.g. transcribe an existing
    Twilio recording): refused before any upstream call."""

    code = "UNSUPPORTED_BY_PROVIDER"


class MediaLinkError(GatewayError):
    """A media link handed back to ``/media/{token}`` cannot be served."""


class MediaLinkInvalidError(MediaLinkError):
    """The token was not signed by this gateway (tampered, truncated, or an unknown key)."""

    code = "MEDIA_LINK_INVALID"


class MediaLinkExpiredError(MediaLinkError):
    """The token is authentic but past its expiry."""

    code = "MEDIA_LINK_EXPIRED"


class MediaLinkGoneError(MediaLinkError):
    """The token is authentic but names a provider account this gateway no longer serves."""

    code = "MEDIA_LINK_UNKNOWN"


class RangeNotSatisfiableError(GatewayError):
    """The requested byte range lies outside the media; ``size`` is its length when known."""

    code = "RANGE_NOT_SATISFIABLE"

    def __init__(self, message: str, *, size: int | None, provider: Provider | None = None) -> None:
        super().__init__(message, provider=provider)
        self.size = size


class ProviderError(GatewayError):
    """An upstream provider failed; ``vendor_code`` is the provider's own error code.

    ``transient`` says why a second try of the same request may succeed ("network",
    "timeout", or the HTTP status: "502", "503", "504", "429"), None when it would not;
    ``retry_after`` is the provider's ``Retry-After`` in seconds, when it gave one; ``status``
    the HTTP status of the answer, when one came. They are for ``app.resilience`` and traces;
    none reaches a client but ``retryAfter`` on a 429.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: Provider,
        vendor_code: str | None = None,
        transient: str | None = None,
        retry_after: int | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider)
        self.vendor_code = vendor_code
        self.transient = transient
        self.retry_after = retry_after
        self.status = status

    @property
    def extensions(self) -> dict[str, Any]:
        extensions = super().extensions
        if self.vendor_code is not None:
            extensions["providerCode"] = self.vendor_code
        return extensions


class ProviderAuthError(ProviderError):
    """The provider rejected the configured credentials (401/403)."""

    code = "PROVIDER_AUTH_FAILED"


class RateLimitedError(ProviderError):
    """The provider throttled us (429); ``retry_after`` is in seconds when it said."""

    code = "PROVIDER_RATE_LIMITED"
    retryable = True

    @property
    def extensions(self) -> dict[str, Any]:
        extensions = super().extensions
        if self.retry_after is not None:
            extensions["retryAfter"] = self.retry_after
        return extensions


class ProviderUnavailableError(ProviderError):
    """The provider could not be reached, timed out, or answered 5xx."""

    code = "PROVIDER_UNAVAILABLE"
    retryable = True


class MalformedProviderResponseError(ProviderError):
    """The provider answered something that is not the JSON shape it documents."""

    code = "PROVIDER_BAD_RESPONSE"
