"""Configuration: the only module that reads the environment.

A provider is enabled when its credentials are set. Secrets are held as
``starlette.datastructures.Secret`` so that no ``repr`` or log line shows them.
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from starlette.datastructures import Secret

from app.errors import ConfigError

_TWILIO_ACCOUNT = re.compile(r"^AC[0-9a-fA-F]{32}$")
_TWILIO_API_KEY = re.compile(r"^SK[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class TwilioSettings:
    """Twilio account; ``username`` is the account SID or an API key SID."""

    account_sid: str
    username: str
    password: Secret
    base_url: str = "https://api.twilio.com"


@dataclass(frozen=True)
class SignalWireSettings:
    """SignalWire space and project; ``base_url`` has a scheme and no trailing slash."""

    base_url: str
    project_id: str
    api_token: Secret


@dataclass(frozen=True)
class BirdSettings:
    """Bird workspace and its access key."""

    workspace_id: str
    access_key: Secret
    base_url: str = "https://api.bird.com"


@dataclass(frozen=True)
class CacheSettings:
    """``GATEWAY_CACHE_URL`` parsed: ``memory``, ``redis`` or ``none``, with TTLs in seconds."""

    kind: str = "memory"
    host: str = ""
    port: int = 6379
    db: int = 0
    password: Secret | None = None
    max_entries: int = 10000
    ttl: int = 3600
    ttl_active: int = 5
    ttl_not_found: int = 30


@dataclass(frozen=True)
class UpstreamSettings:
    """The wire to the providers: which transport, its pool, an egress proxy, a private CA.

    ``transport`` is ``aiohttp`` (the default: half the CPU per call) or ``httpx`` (httpx's
    own ``AsyncHTTPTransport``, the fallback); ``max_connections`` bounds its pool.
    ``proxies`` maps ``http`` and ``https`` to the proxy for URLs of that scheme, and
    ``no_proxy`` lists the hosts reached directly (``app.upstream.proxies``): both are read
    only with ``GATEWAY_UPSTREAM_TRUST_ENV=1``, otherwise the environment is ignored.
    ``ca_file`` holds certificate authorities trusted besides certifi's.
    """

    transport: str = "aiohttp"
    max_connections: int = 400
    proxies: Mapping[str, Secret] = field(default_factory=dict)
    no_proxy: str | None = None
    ca_file: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs to run. Build it with ``Settings.from_env``."""

    twilio: TwilioSettings | None = None
    signalwire: SignalWireSettings | None = None
    bird: BirdSettings | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    upstream_timeout: float = 10.0
    upstream: UpstreamSettings = UpstreamSettings()
    cache: CacheSettings = CacheSettings()
    max_batch: int = 100
    max_page_size: int = 100
    signing_keys: tuple[Secret, ...] = ()
    public_url: str | None = None
    media_max_ttl: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); raise ConfigError if bad."""
        env = _Env(os.environ if environ is None else environ)
        return cls(
            twilio=_twilio(env),
            signalwire=_signalwire(env),
            bird=_bird(env),
            host=env.get("GATEWAY_HOST") or "127.0.0.1",
            port=env.integer("GATEWAY_PORT", 8000, low=0, high=65535),
            upstream_timeout=env.number("GATEWAY_UPSTREAM_TIMEOUT", 10.0),
            upstream=_upstream(env),
            cache=_cache(env),
            max_batch=env.integer("GATEWAY_MAX_BATCH", 100, low=1, high=10000),
            max_page_size=env.integer("GATEWAY_MAX_PAGE_SIZE", 100, low=1, high=1000),
            signing_keys=_signing_keys(env),
            public_url=_public_url(env),
            media_max_ttl=env.integer("GATEWAY_MEDIA_MAX_TTL", 3600, low=1, high=7 * 24 * 3600),
        )


class _Env:
    """A view of the environment with typed, validated getters."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def integer(self, name: str, default: int, *, low: int = 0, high: int = 2**31) -> int:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def pair(self, first: str, second: str) -> tuple[str, str] | None:
        """Two variables that must be set together (the second is a secret)."""
        a, b = self.get(first), self.get(second)
        if a is None and b is None:
            return None
        if a is None or b is None:
            missing = first if a is None else second
            other = second if a is None else first
            raise ConfigError(f"{other} is set but {missing} is not; set both or neither")
        return a, b


def _twilio(env: _Env) -> TwilioSettings | None:
    sid, token = env.get("TWILIO_ACCOUNT_SID"), env.get("TWILIO_AUTH_TOKEN")
    api_key = env.pair("TWILIO_API_KEY", "TWILIO_API_SECRET")
    if sid is None and token is None and api_key is None:
        return None
    if sid is None:
        raise ConfigError("TWILIO_ACCOUNT_SID (the AC... account SID) is required for Twilio")
    if not _TWILIO_ACCOUNT.match(sid):
        raise ConfigError("TWILIO_ACCOUNT_SID must look like AC followed by 32 hex digits")
    if api_key is not None:
        if not _TWILIO_API_KEY.match(api_key[0]):
            raise ConfigError("TWILIO_API_KEY must look like SK followed by 32 hex digits")
        username, password = api_key
    elif token is not None:
        username, password = sid, token
    else:
        raise ConfigError(
            "TWILIO_ACCOUNT_SID is set but TWILIO_AUTH_TOKEN is not "
            "(or set TWILIO_API_KEY and TWILIO_API_SECRET)"
        )
    return TwilioSettings(
        account_sid=sid,
        username=username,
        password=Secret(password),
        base_url=_url(env, "TWILIO_BASE_URL", "https://api.twilio.com"),
    )


def _signalwire(env: _Env) -> SignalWireSettings | None:
    creds = env.pair("SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN")
    space = env.get("SIGNALWIRE_SPACE_URL")
    if creds is None and space is None:
        return None
    if creds is None or space is None:
        raise ConfigError(
            "SignalWire needs SIGNALWIRE_SPACE_URL, SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN"
        )
    if "://" not in space:
        space = f"https://{space}"
    return SignalWireSettings(
        base_url=_base_url(space, "SIGNALWIRE_SPACE_URL"),
        project_id=creds[0],
        api_token=Secret(creds[1]),
    )


def _bird(env: _Env) -> BirdSettings | None:
    creds = env.pair("BIRD_WORKSPACE_ID", "BIRD_ACCESS_KEY")
    if creds is None:
        return None
    return BirdSettings(
        workspace_id=creds[0],
        access_key=Secret(creds[1]),
        base_url=_url(env, "BIRD_BASE_URL", "https://api.bird.com"),
    )


UPSTREAM_TRANSPORTS = ("aiohttp", "httpx")
#: The proxy variable GATEWAY_UPSTREAM_TRUST_ENV=1 honours for each URL scheme.
PROXY_VARIABLES = {"http": "HTTP_PROXY", "https": "HTTPS_PROXY"}


def _upstream(env: _Env) -> UpstreamSettings:
    transport = (env.get("GATEWAY_UPSTREAM_TRANSPORT") or "aiohttp").lower()
    if transport not in UPSTREAM_TRANSPORTS:
        raise ConfigError(
            f"GATEWAY_UPSTREAM_TRANSPORT must be one of {', '.join(UPSTREAM_TRANSPORTS)}, "
            f"got {transport!r}"
        )
    proxies: dict[str, Secret] = {}
    no_proxy = None
    if _flag(env, "GATEWAY_UPSTREAM_TRUST_ENV"):
        for scheme, name in PROXY_VARIABLES.items():
            proxy = _proxy_url(env, name)
            if proxy is not None:
                proxies[scheme] = proxy
        no_proxy = _proxy_variable(env, "NO_PROXY")
    return UpstreamSettings(
        transport=transport,
        max_connections=env.integer("GATEWAY_UPSTREAM_MAX_CONNECTIONS", 400, low=1, high=100000),
        proxies=proxies,
        no_proxy=no_proxy,
        ca_file=_ca_file(env, "GATEWAY_UPSTREAM_CA_FILE"),
    )


def _flag(env: _Env, name: str) -> bool:
    raw = (env.get(name) or "0").lower()
    if raw not in ("0", "1", "false", "true", "no", "yes"):
        raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")
    return raw in ("1", "true", "yes")


def _proxy_variable(env: _Env, name: str) -> str | None:
    """``name`` or its lower-case spelling, which wins (as with curl and urllib)."""
    return env.get(name.lower()) or env.get(name)


def _proxy_url(env: _Env, name: str) -> Secret | None:
    """A proxy's URL, ``http://[user:password@]host[:port]``: a secret, as it may hold one."""
    value = _proxy_variable(env, name)
    if value is None:
        return None
    parts = urlsplit(value)
    try:
        valid = parts.scheme == "http" and bool(parts.hostname) and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        valid = False
    if not valid or parts.path not in ("", "/") or parts.query:
        # The URL may carry a password: say what is expected, never echo it.
        raise ConfigError(
            f"{name} (honoured with GATEWAY_UPSTREAM_TRUST_ENV=1) must look like "
            "http://[user:password@]host:port"
        )
    return Secret(value)


def _ca_file(env: _Env, name: str) -> str | None:
    """The path of a PEM file of certificate authorities, checked to load."""
    path = env.get(name)
    if path is None:
        return None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
    except ssl.SSLError:  # an OSError too: first
        raise ConfigError(f"{name}: {path!r} holds no PEM certificate") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{name}: cannot read {path!r} ({reason})") from None
    return path


def _signing_keys(env: _Env) -> tuple[Secret, ...]:
    keys = [key.strip() for key in (env.get("GATEWAY_SIGNING_KEYS") or "").split(",")]
    keys = [key for key in keys if key]
    if any(len(key) < 16 for key in keys):
        raise ConfigError("each GATEWAY_SIGNING_KEYS entry must be at least 16 characters")
    return tuple(Secret(key) for key in keys)


def require_signing_keys(settings: Settings) -> list[str]:
    """The signing keys in clear (the first signs), or ConfigError when none is set.

    The gateway cannot run without one (it signs media links and cursors), but settings
    may be read without one: ``serve --demo`` then makes a throwaway key.
    """
    if not settings.signing_keys:
        raise ConfigError(
            "GATEWAY_SIGNING_KEYS is not set: the gateway signs media links and cursors "
            "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return [str(key) for key in settings.signing_keys]


def _public_url(env: _Env) -> str | None:
    """Where clients reach the gateway (media links are built on it); no query, no fragment."""
    value = env.get("GATEWAY_PUBLIC_URL")
    if value is None:
        return None
    if "?" in value or "#" in value:
        raise ConfigError(f"GATEWAY_PUBLIC_URL must be a plain http(s) URL, got {value!r}")
    return _base_url(value, "GATEWAY_PUBLIC_URL")


def _cache(env: _Env) -> CacheSettings:
    url = env.get("GATEWAY_CACHE_URL") or "memory://"
    parts = urlsplit(url)
    policy = CacheSettings(
        max_entries=env.integer("GATEWAY_CACHE_MAX_ENTRIES", 10000, low=1),
        ttl=env.integer("GATEWAY_CACHE_TTL", 3600),
        ttl_active=env.integer("GATEWAY_CACHE_TTL_ACTIVE", 5),
        ttl_not_found=env.integer("GATEWAY_CACHE_TTL_NOT_FOUND", 30),
    )
    if parts.scheme in ("memory", "none"):
        return replace(policy, kind=parts.scheme)
    if parts.scheme != "redis":
        raise ConfigError(
            "GATEWAY_CACHE_URL must be memory://, redis://host:port/db or none:// "
            f"(got the scheme {parts.scheme!r})"
        )
    db = parts.path.strip("/") or "0"
    try:
        port = parts.port or 6379
    except ValueError:
        port = -1
    if not parts.hostname or not db.isdigit() or port < 0:
        # The URL may carry a password: say what is expected, never echo it.
        raise ConfigError("GATEWAY_CACHE_URL must look like redis://[:password@]host:port/db")
    password = Secret(parts.password) if parts.password else None
    return replace(
        policy, kind="redis", host=parts.hostname, port=port, db=int(db), password=password
    )


def _url(env: _Env, name: str, default: str) -> str:
    return _base_url(env.get(name) or default, name)


def _base_url(value: str, name: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")
