"""The gateway's exceptions.

Every error a client can see is a ``GatewayError`` and carries a stable ``code``
(sent as ``extensions.code``)::

    GatewayError
    ├── ConfigError                      (start-up only; never reaches a client)
    ├── BadUserInputError                BAD_USER_INPUT
    ├── ProviderNotConfiguredError       PROVIDER_NOT_CONFIGURED
    ├── RecordingNotFoundError           NOT_FOUND
    ├── MediaDirectUnavailableError      MEDIA_DIRECT_UNAVAILABLE (no credential-free link)
    ├── MediaLinkError                   (GET /media/{token} only; never a GraphQL error)
    │   ├── MediaLinkInvalidError        MEDIA_LINK_INVALID  -> 403 (bad or tampered token)
    │   ├── MediaLinkExpiredError        MEDIA_LINK_EXPIRED  -> 410
    │   └── MediaLinkGoneError           MEDIA_LINK_UNKNOWN  -> 404 (account no longer served)
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
    """An upstream provider failed; ``vendor_code`` is the provider's own error code."""

    def __init__(self, message: str, *, provider: Provider, vendor_code: str | None = None) -> None:
        super().__init__(message, provider=provider)
        self.vendor_code = vendor_code

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

    def __init__(
        self,
        message: str,
        *,
        provider: Provider,
        vendor_code: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message, provider=provider, vendor_code=vendor_code)
        self.retry_after = retry_after

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
