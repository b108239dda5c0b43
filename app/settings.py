"""Configuration: the only module that reads the environment and the config file.

Two modes. In the **environment mode** (today's), a provider is enabled when its
credentials are set, and everything belongs to one tenant, ``default``
(``GATEWAY_API_KEYS`` protects it). With ``GATEWAY_CONFIG=/path/gateway.toml`` the file
declares **tenants**, each with its own API keys, scopes, rate limit and provider accounts,
and optionally ``[auth.jwt]``; the providers' environment variables are then refused, so no
setting is silently ignored.

Each provider section is read by one parser whatever its source (``_Section``): a message
names the place, ``TWILIO_AUTH_TOKEN`` or ``tenants.acme.twilio.auth_token``, never the
value. Secrets are held as ``starlette.datastructures.Secret`` so that no ``repr`` or log
line shows them.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import limits
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.datastructures import Secret

from app.errors import ConfigError

logger = logging.getLogger("app.settings")

_TWILIO_ACCOUNT = re.compile(r"^AC[0-9a-fA-F]{32}$")
_TWILIO_API_KEY = re.compile(r"^SK[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class TwilioSettings:
    """Twilio account; ``username`` is the account SID or an API key SID."""

    account_sid: str
    username: str
    password: Secret
    base_url: str = "https://api.twilio.com"
    #: What signs its status callbacks (``X-Twilio-Signature``): the auth token unless
    #: ``webhook_signing_key`` says otherwise; None (no receiver) with an API key and neither.
    webhook_signing_key: Secret | None = None


@dataclass(frozen=True)
class SignalWireSettings:
    """SignalWire space and project; ``base_url`` has a scheme and no trailing slash."""

    base_url: str
    project_id: str
    api_token: Secret
    #: The space's Signing Key, which signs its status callbacks; None: no receiver.
    webhook_signing_key: Secret | None = None


@dataclass(frozen=True)
class BirdSettings:
    """Bird workspace and its access key."""

    workspace_id: str
    access_key: Secret
    base_url: str = "https://api.bird.com"
    #: The webhook subscription's signing key (``MessageBird-Signature``); None: no receiver.
    webhook_signing_key: Secret | None = None


@dataclass(frozen=True)
class CacheSettings:
    """``GATEWAY_CACHE_URL`` parsed: ``memory``, ``redis`` or ``none``, with TTLs in seconds
    (``stale_ttl``: how long a recording past its TTL is still kept, to be served when the
    provider fails; 0 turns that off), the longest wait for one Redis call (``timeout``)
    and how long Redis is bypassed after a failure (``cooldown``: the rate limiter and
    persisted queries share it)."""

    kind: str = "memory"
    host: str = ""
    port: int = 6379
    db: int = 0
    password: Secret | None = None
    max_entries: int = 10000
    ttl: int = 3600
    ttl_active: int = 5
    ttl_not_found: int = 30
    stale_ttl: int = 86400
    timeout: float = 0.1
    cooldown: float = 5.0


@dataclass(frozen=True)
class UpstreamSettings:
    """The wire to the providers: which transport, its pool, an egress proxy, a private CA.

    ``transport`` is ``aiohttp`` (the default: half the CPU per call) or ``httpx`` (httpx's
    own ``AsyncHTTPTransport``, the fallback); ``max_connections`` bounds its pool.
    ``proxies`` maps ``http`` and ``https`` to the proxy for URLs of that scheme, and
    ``no_proxy`` lists the hosts reached directly (``app.upstream.proxies``): both are read
    only with ``GATEWAY_UPSTREAM_TRUST_ENV=1``, otherwise the environment is ignored.
    ``ca_file`` holds certificate authorities trusted besides certifi's.
    ``max_body_bytes`` caps a provider's JSON answer; ``media_redirect_hosts`` adds host
    patterns (``*.example.com``) to every provider's media redirect allow-list.
    ``retry_attempts``, ``retry_after_max``, ``breaker_failures`` and ``breaker_cooldown``
    tune every provider account's ``CallGuard`` (``app.resilience``).
    """

    transport: str = "aiohttp"
    max_connections: int = 400
    proxies: Mapping[str, Secret] = field(default_factory=dict)
    no_proxy: str | None = None
    ca_file: str | None = None
    max_body_bytes: int = 2 * 2**20
    media_redirect_hosts: tuple[str, ...] = ()
    retry_attempts: int = 3
    retry_after_max: float = 2.0
    breaker_failures: int = 5
    breaker_cooldown: float = 10.0


#: What a tenant may do when its config names no scopes (and all there is to name).
DEFAULT_SCOPES = frozenset({"recordings:read", "media:read"})
#: Deleting recordings is granted only when a tenant's config (or a JWT) names it.
SCOPES = DEFAULT_SCOPES | {"recordings:delete", "transcriptions:request"}
#: The tenant of the environment mode.
DEFAULT_TENANT = "default"
TENANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEY_HASH = re.compile(r"sha256:([0-9a-fA-F]{64})")


@dataclass(frozen=True)
class TenantSettings:
    """One tenant: who may call as it (hashes of its API keys), what it may do (scopes), how
    much (``rate_limit``, as the ``limits`` library writes it: ``600/minute``), and the
    provider accounts whose recordings it sees."""

    name: str
    api_keys: tuple[str, ...] = ()  # hex SHA-256 digests, lower case
    scopes: frozenset[str] = DEFAULT_SCOPES
    rate_limit: str | None = None
    twilio: TwilioSettings | None = None
    signalwire: SignalWireSettings | None = None
    bird: BirdSettings | None = None


@dataclass(frozen=True)
class JwtSettings:
    """``[auth.jwt]``: tokens from an identity provider, verified with its public keys."""

    issuer: str
    audience: str
    jwks_url: str | None = None
    public_key_pem: bytes | None = field(default=None, repr=False)
    tenant_claim: str = "tenant"
    algorithms: tuple[str, ...] = ("RS256", "ES256")


@dataclass(frozen=True)
class RequestLimits:
    """What one GraphQL request may ask of the gateway, checked before any upstream call."""

    max_body_bytes: int = 65536
    max_tokens: int = 2000
    max_depth: int = 12
    max_aliases: int = 100
    max_cost: int = 500
    introspection: bool = False


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs to run. Build it with ``Settings.from_env``.

    ``twilio``, ``signalwire``, ``bird``, ``api_keys`` and ``rate_limit`` describe the
    environment mode's one tenant; ``tenants`` is set instead when a config file declares
    them. Read the tenants through ``tenant_settings()``, which covers both.
    """

    twilio: TwilioSettings | None = None
    signalwire: SignalWireSettings | None = None
    bird: BirdSettings | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    upstream_timeout: float = 10.0
    request_timeout: float = 15.0
    upstream: UpstreamSettings = UpstreamSettings()
    cache: CacheSettings = CacheSettings()
    max_batch: int = 100
    max_page_size: int = 100
    signing_keys: tuple[Secret, ...] = ()
    public_url: str | None = None
    media_max_ttl: int = 3600
    api_keys: tuple[str, ...] = ()
    rate_limit: str | None = None
    tenants: Mapping[str, TenantSettings] | None = None
    jwt: JwtSettings | None = None
    limits: RequestLimits = RequestLimits()
    graphiql: bool = True
    cors_origins: tuple[str, ...] = ()
    persisted_queries: str = "apq"
    persisted_queries_file: str | None = None
    response_cache: bool = True
    log_format: str = "text"
    #: One line per HTTP request (uvicorn's access log, ``app.logs``).
    access_log: bool = True
    metrics_token: Secret | None = None
    shutdown_grace: float = 20.0
    #: Events a subscriber's queue holds before the oldest are dropped (``app.events``).
    subscription_queue: int = 100
    #: Seconds a provider webhook delivery is remembered, to acknowledge and ignore its
    #: retries (``app.webhooks``): Bird retries for up to 8 hours.
    webhook_dedupe_ttl: int = 86400
    #: Verified webhook deliveries being worked on at once; past it, 503 (the provider retries).
    webhook_max_pending: int = 1000
    #: Upstream pages ``recordingStats`` may read per provider (``app.stats``): its cost.
    stats_max_pages: int = 100
    #: Seconds a WebSocket may take to send ``connection_init``; operations it may run at once.
    ws_init_timeout: float = 10.0
    ws_max_subscriptions: int = 20

    def tenant_settings(self) -> dict[str, TenantSettings]:
        """Every tenant by name: the config file's, or the environment mode's ``default``."""
        if self.tenants is not None:
            return dict(self.tenants)
        default = TenantSettings(
            DEFAULT_TENANT,
            api_keys=self.api_keys,
            rate_limit=self.rate_limit,
            twilio=self.twilio,
            signalwire=self.signalwire,
            bird=self.bird,
        )
        return {DEFAULT_TENANT: default}

    @property
    def client_auth(self) -> bool:
        """Whether callers must authenticate (some tenant has API keys, or JWT is set up)."""
        return self.jwt is not None or any(t.api_keys for t in self.tenant_settings().values())

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); raise ConfigError if bad."""
        env = _Env(os.environ if environ is None else environ)
        config = _config_file(env)
        if config is not None:
            env.refuse_with_config(_ENVIRONMENT_MODE_ONLY)
        sections = {
            name: parse(_EnvSection(env, names)) for name, (parse, names) in _SECTIONS.items()
        }
        return cls(
            twilio=sections["twilio"],
            signalwire=sections["signalwire"],
            bird=sections["bird"],
            api_keys=_key_hashes(env.list("GATEWAY_API_KEYS"), "GATEWAY_API_KEYS"),
            rate_limit=_rate(env.get("GATEWAY_RATE_LIMIT"), "GATEWAY_RATE_LIMIT"),
            tenants=_tenants(config, env) if config is not None else None,
            jwt=_jwt(config) if config is not None else None,
            limits=_limits(env),
            graphiql=_flag(env, "GATEWAY_GRAPHIQL", default=True),
            cors_origins=_cors_origins(env),
            persisted_queries=_persisted_queries(env),
            persisted_queries_file=env.get("GATEWAY_PERSISTED_QUERIES_FILE"),
            response_cache=_on_off(env, "GATEWAY_RESPONSE_CACHE"),
            log_format=_log_format(env),
            access_log=_on_off(env, "GATEWAY_ACCESS_LOG"),
            metrics_token=_metrics_token(env),
            shutdown_grace=_shutdown_grace(env),
            subscription_queue=env.integer("GATEWAY_SUBSCRIPTION_QUEUE", 100, low=1, high=100000),
            webhook_dedupe_ttl=env.integer(
                "GATEWAY_WEBHOOK_DEDUPE_TTL", 86400, low=60, high=7 * 24 * 3600
            ),
            webhook_max_pending=env.integer(
                "GATEWAY_WEBHOOK_MAX_PENDING", 1000, low=1, high=100000
            ),
            stats_max_pages=env.integer("GATEWAY_STATS_MAX_PAGES", 100, low=1, high=100000),
            ws_init_timeout=env.number("GATEWAY_WS_INIT_TIMEOUT", 10.0),
            ws_max_subscriptions=env.integer("GATEWAY_WS_MAX_SUBSCRIPTIONS", 20, low=1, high=1000),
            host=env.get("GATEWAY_HOST") or "127.0.0.1",
            port=env.integer("GATEWAY_PORT", 8000, low=0, high=65535),
            upstream_timeout=env.number("GATEWAY_UPSTREAM_TIMEOUT", 10.0),
            request_timeout=env.number("GATEWAY_REQUEST_TIMEOUT", 15.0),
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

    def number(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < 0 or (value == 0 and not allow_zero) or value != value:
            raise ConfigError(f"{name} must be positive, got {raw!r}")
        return value

    def list(self, name: str) -> list[str]:
        """A comma-separated list, blanks dropped."""
        return [item.strip() for item in (self.get(name) or "").split(",") if item.strip()]

    def refuse_with_config(self, names: tuple[str, ...]) -> None:
        """ConfigError if any of ``names`` is set: the config file replaces them."""
        found = [name for name in names if self.get(name) is not None]
        if found:
            raise ConfigError(
                f"GATEWAY_CONFIG declares the tenants, so {', '.join(found)} would be ignored: "
                "move them into the config file (or unset GATEWAY_CONFIG)"
            )


class _Section:
    """One provider's settings, wherever they come from: ``get`` a key, ``name`` its place."""

    def get(self, key: str) -> str | None:
        raise NotImplementedError

    def name(self, key: str) -> str:
        raise NotImplementedError

    def pair(self, first: str, second: str) -> tuple[str, str] | None:
        """Two keys that must be set together (the second is a secret)."""
        a, b = self.get(first), self.get(second)
        if a is None and b is None:
            return None
        if a is None or b is None:
            missing, other = (first, second) if a is None else (second, first)
            raise ConfigError(
                f"{self.name(other)} is set but {self.name(missing)} is not; set both or neither"
            )
        return a, b

    def url(self, key: str, default: str) -> str:
        return _base_url(self.get(key) or default, self.name(key))


class _EnvSection(_Section):
    """A provider's environment variables: ``names`` maps each key to its variable."""

    def __init__(self, env: _Env, names: Mapping[str, str]) -> None:
        self._env = env
        self._names = names

    def get(self, key: str) -> str | None:
        return self._env.get(self._names[key])

    def name(self, key: str) -> str:
        return self._names[key]


class _TableSection(_Section):
    """A provider's table in the config file, ``[tenants.NAME.PROVIDER]``.

    A secret may be written ``env:NAME`` to read it from the environment (an unset variable
    stops start-up); a literal secret works but logs a warning naming its place.
    """

    def __init__(
        self, table: Mapping[str, Any], path: str, keys: Mapping[str, str], env: _Env
    ) -> None:
        unknown = sorted(set(table) - set(keys))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {unknown[0]!r} (expected {', '.join(sorted(keys))})"
            )
        self._table = table
        self._path = path
        self._env = env

    def get(self, key: str) -> str | None:
        value = self._table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{self.name(key)} must be a string")
        value = value.strip()
        if key in _SECRET_KEYS:
            if value.startswith("env:"):
                variable = value.removeprefix("env:").strip()
                resolved = self._env.get(variable) if variable else None
                if resolved is None:
                    raise ConfigError(
                        f"{self.name(key)} names the environment variable {variable!r}, "
                        "which is not set"
                    )
                return resolved
            if value:
                logger.warning(
                    "%s holds a literal secret; prefer env:NAME so the file holds none",
                    self.name(key),
                )
        return value or None

    def name(self, key: str) -> str:
        return f"{self._path}.{key}"


def _twilio(src: _Section) -> TwilioSettings | None:
    sid, token = src.get("account_sid"), src.get("auth_token")
    api_key = src.pair("api_key", "api_secret")
    if sid is None and token is None and api_key is None:
        return None
    if sid is None:
        raise ConfigError(
            f"{src.name('account_sid')} (the AC... account SID) is required for Twilio"
        )
    if not _TWILIO_ACCOUNT.match(sid):
        raise ConfigError(f"{src.name('account_sid')} must look like AC followed by 32 hex digits")
    signing_key = src.get("webhook_signing_key") or token
    if api_key is not None:
        if not _TWILIO_API_KEY.match(api_key[0]):
            raise ConfigError(f"{src.name('api_key')} must look like SK followed by 32 hex digits")
        username, password = api_key
    elif token is not None:
        username, password = sid, token
    else:
        raise ConfigError(
            f"{src.name('account_sid')} is set but {src.name('auth_token')} is not "
            f"(or set {src.name('api_key')} and {src.name('api_secret')})"
        )
    return TwilioSettings(
        account_sid=sid,
        username=username,
        password=Secret(password),
        base_url=src.url("base_url", "https://api.twilio.com"),
        webhook_signing_key=Secret(signing_key) if signing_key else None,
    )


def _signalwire(src: _Section) -> SignalWireSettings | None:
    creds = src.pair("project_id", "api_token")
    space = src.get("space_url")
    if creds is None and space is None:
        return None
    if creds is None or space is None:
        names = ", ".join(src.name(key) for key in ("space_url", "project_id"))
        raise ConfigError(f"SignalWire needs {names} and {src.name('api_token')}")
    if "://" not in space:
        space = f"https://{space}"
    return SignalWireSettings(
        base_url=_base_url(space, src.name("space_url")),
        project_id=creds[0],
        api_token=Secret(creds[1]),
        webhook_signing_key=_optional_secret(src, "webhook_signing_key"),
    )


def _bird(src: _Section) -> BirdSettings | None:
    creds = src.pair("workspace_id", "access_key")
    if creds is None:
        return None
    return BirdSettings(
        workspace_id=creds[0],
        access_key=Secret(creds[1]),
        base_url=src.url("base_url", "https://api.bird.com"),
        webhook_signing_key=_optional_secret(src, "webhook_signing_key"),
    )


def _optional_secret(src: _Section, key: str) -> Secret | None:
    value = src.get(key)
    return Secret(value) if value else None


ProviderSection = TwilioSettings | SignalWireSettings | BirdSettings

#: Each provider section: its parser, and the environment variable of each of its keys
#: (the keys are also the config file's).
_SECTIONS: dict[str, tuple[Any, Mapping[str, str]]] = {
    "twilio": (
        _twilio,
        {
            "account_sid": "TWILIO_ACCOUNT_SID",
            "auth_token": "TWILIO_AUTH_TOKEN",
            "api_key": "TWILIO_API_KEY",
            "api_secret": "TWILIO_API_SECRET",
            "base_url": "TWILIO_BASE_URL",
            "webhook_signing_key": "TWILIO_WEBHOOK_SIGNING_KEY",
        },
    ),
    "signalwire": (
        _signalwire,
        {
            "space_url": "SIGNALWIRE_SPACE_URL",
            "project_id": "SIGNALWIRE_PROJECT_ID",
            "api_token": "SIGNALWIRE_API_TOKEN",
            "webhook_signing_key": "SIGNALWIRE_SIGNING_KEY",
        },
    ),
    "bird": (
        _bird,
        {
            "workspace_id": "BIRD_WORKSPACE_ID",
            "access_key": "BIRD_ACCESS_KEY",
            "base_url": "BIRD_BASE_URL",
            "webhook_signing_key": "BIRD_WEBHOOK_SIGNING_KEY",
        },
    ),
}
_SECRET_KEYS = frozenset(
    {"auth_token", "api_secret", "api_token", "access_key", "webhook_signing_key"}
)
#: Variables of the environment mode that a config file replaces.
_ENVIRONMENT_MODE_ONLY = (
    *(name for _, names in _SECTIONS.values() for name in names.values()),
    "GATEWAY_API_KEYS",
    "GATEWAY_RATE_LIMIT",
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
        max_body_bytes=env.integer(
            "GATEWAY_UPSTREAM_MAX_BODY_BYTES", 2 * 2**20, low=1024, high=2**30
        ),
        media_redirect_hosts=_host_patterns(env, "GATEWAY_MEDIA_REDIRECT_HOSTS"),
        retry_attempts=env.integer("GATEWAY_RETRY_ATTEMPTS", 3, low=1, high=10),
        retry_after_max=env.number("GATEWAY_RETRY_AFTER_MAX", 2.0, allow_zero=True),
        breaker_failures=env.integer("GATEWAY_BREAKER_FAILURES", 5, low=1, high=1000),
        breaker_cooldown=env.number("GATEWAY_BREAKER_COOLDOWN", 10.0),
    )


_HOST_PATTERN = re.compile(
    r"(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*"
)


def _host_patterns(env: _Env, name: str) -> tuple[str, ...]:
    """Comma-separated host names, each optionally ``*.``-prefixed (the names under it)."""
    patterns = env.list(name)
    for pattern in patterns:
        if not _HOST_PATTERN.fullmatch(pattern) or pattern.replace(".", "").isdigit():
            raise ConfigError(
                f"{name} lists host names like media.example.com or *.example.com, got {pattern!r}"
            )
    return tuple(pattern.lower() for pattern in patterns)


def _flag(env: _Env, name: str, *, default: bool = False) -> bool:
    raw = (env.get(name) or ("1" if default else "0")).lower()
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


def _metrics_token(env: _Env) -> Secret | None:
    """The bearer token ``GET /metrics`` asks for (None: the endpoint is open)."""
    token = env.get("GATEWAY_METRICS_TOKEN")
    if token is None:
        return None
    if len(token) < 16:
        raise ConfigError("GATEWAY_METRICS_TOKEN must be at least 16 characters")
    return Secret(token)


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
        stale_ttl=env.integer("GATEWAY_CACHE_STALE_TTL", 86400),
        timeout=env.number("GATEWAY_CACHE_TIMEOUT", 0.1),
        cooldown=env.number("GATEWAY_CACHE_COOLDOWN", 5.0, allow_zero=True),
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


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(value: str, name: str) -> str:
    if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def _limits(env: _Env) -> RequestLimits:
    return RequestLimits(
        max_body_bytes=env.integer("GATEWAY_MAX_BODY_BYTES", 65536, low=256, high=64 * 2**20),
        max_tokens=env.integer("GATEWAY_MAX_TOKENS", 2000, low=10, high=100000),
        max_depth=env.integer("GATEWAY_MAX_DEPTH", 12, low=1, high=100),
        max_aliases=env.integer("GATEWAY_MAX_ALIASES", 100, low=1, high=10000),
        max_cost=env.integer("GATEWAY_MAX_COST", 500, low=1, high=10**6),
        introspection=_flag(env, "GATEWAY_INTROSPECTION"),
    )


def _key_hashes(values: list[Any], place: str) -> tuple[str, ...]:
    """``sha256:<64 hex>`` entries as lower-case hex digests (never echoing a bad entry:
    it may be a key pasted by mistake)."""
    digests: list[str] = []
    for index, value in enumerate(values):
        found = _KEY_HASH.fullmatch(value.strip()) if isinstance(value, str) else None
        if found is None:
            raise ConfigError(
                f"{place}[{index}] must be 'sha256:' and 64 hex digits, the hash of a key "
                "(make one with: recording-gateway keys new)"
            )
        digests.append(found.group(1).lower())
    return tuple(digests)


def _rate(value: Any, place: str) -> str | None:
    """A rate limit as the ``limits`` library writes it, checked now."""
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        limits.parse(value)
    except ValueError:
        raise ConfigError(
            f"{place} must look like 600/minute (a count per second, minute, hour or day)"
        ) from None
    return value.strip()


def _config_file(env: _Env) -> dict[str, Any] | None:
    """The parsed ``GATEWAY_CONFIG`` file, or None when the variable is unset."""
    path = env.get("GATEWAY_CONFIG")
    if path is None:
        return None
    try:
        with Path(path).open("rb") as file:
            config = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: cannot read {path!r} ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"GATEWAY_CONFIG: {path!r} is not valid TOML ({exc})") from None
    _known(config, "GATEWAY_CONFIG", {"tenants", "auth"})
    return config


def _known(table: Mapping[str, Any], place: str, keys: set[str]) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise ConfigError(
            f"{place}: unknown key {unknown[0]!r} (expected {', '.join(sorted(keys))})"
        )


def _table(value: Any, place: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{place} must be a table")
    return value


def _tenants(config: Mapping[str, Any], env: _Env) -> dict[str, TenantSettings]:
    tables = _table(config.get("tenants", {}), "tenants")
    if not tables:
        raise ConfigError("GATEWAY_CONFIG declares no tenant: add a [tenants.NAME] table")
    tenants: dict[str, TenantSettings] = {}
    owner: dict[str, str] = {}
    for name, value in tables.items():
        place = f"tenants.{name}"
        if not TENANT_NAME.fullmatch(name):
            raise ConfigError(f"{place}: a tenant name is letters, digits, '.', '_' or '-'")
        tenant = _tenant(name, _table(value, place), env)
        for digest in tenant.api_keys:
            if digest in owner:
                raise ConfigError(
                    f"{place}.api_keys: a key hash also listed by tenants.{owner[digest]}"
                )
            owner[digest] = name
        tenants[name] = tenant
    return tenants


def _tenant(name: str, table: Mapping[str, Any], env: _Env) -> TenantSettings:
    place = f"tenants.{name}"
    _known(table, place, {"api_keys", "scopes", "rate_limit", *_SECTIONS})
    keys = table.get("api_keys", [])
    if not isinstance(keys, list):
        raise ConfigError(f"{place}.api_keys must be a list of 'sha256:...' strings")
    scopes = table.get("scopes", sorted(DEFAULT_SCOPES))
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ConfigError(f"{place}.scopes must be a list of strings")
    unknown = sorted(set(scopes) - SCOPES)
    if unknown:
        raise ConfigError(
            f"{place}.scopes: unknown scope {unknown[0]!r} (known: {', '.join(sorted(SCOPES))})"
        )
    sections: dict[str, Any] = {}
    for provider, (parse, names) in _SECTIONS.items():
        if provider in table:
            path = f"{place}.{provider}"
            section = parse(_TableSection(_table(table[provider], path), path, names, env))
            if section is None:
                raise ConfigError(f"{path} is empty: give its credentials or remove it")
            sections[provider] = section
    if not sections:
        raise ConfigError(
            f"{place} has no provider: add [{place}.twilio], [{place}.signalwire] or [{place}.bird]"
        )
    return TenantSettings(
        name,
        api_keys=_key_hashes(keys, f"{place}.api_keys"),
        scopes=frozenset(scopes),
        rate_limit=_rate(table.get("rate_limit"), f"{place}.rate_limit"),
        **sections,
    )


#: Signature algorithms a JWT may use: asymmetric only (an HMAC "key" would be the public key).
JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")


def _jwt(config: Mapping[str, Any]) -> JwtSettings | None:
    auth = _table(config.get("auth", {}), "auth")
    _known(auth, "auth", {"jwt"})
    if "jwt" not in auth:
        return None
    table = _table(auth["jwt"], "auth.jwt")
    _known(
        table,
        "auth.jwt",
        {"issuer", "audience", "jwks_url", "public_key_file", "tenant_claim", "algorithms"},
    )
    values: dict[str, str] = {}
    for key in ("issuer", "audience", "tenant_claim"):
        value = table.get(key, "tenant" if key == "tenant_claim" else None)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"auth.jwt.{key} is required (a string)")
        values[key] = value.strip()
    jwks_url, key_file = table.get("jwks_url"), table.get("public_key_file")
    if (jwks_url is None) == (key_file is None):
        raise ConfigError("auth.jwt needs exactly one of jwks_url and public_key_file")
    pem = None
    if key_file is not None:
        try:
            pem = Path(str(key_file)).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"auth.jwt.public_key_file: cannot read {key_file!r} ({exc.strerror})"
            ) from None
        try:
            public_key = load_pem_public_key(pem)
        except ValueError:
            raise ConfigError(
                f"auth.jwt.public_key_file: {key_file!r} holds no PEM public key"
            ) from None
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < 2048:
            raise ConfigError("auth.jwt.public_key_file: an RSA key needs 2048 bits or more")
    else:
        jwks_url = _base_url(str(jwks_url), "auth.jwt.jwks_url")
        host = urlsplit(jwks_url).hostname or ""
        if not jwks_url.startswith("https://") and not is_loopback(host):
            # The key set decides whom the gateway trusts: it must not cross a network in clear.
            raise ConfigError("auth.jwt.jwks_url must be https (http only to a loopback address)")
    algorithms = table.get("algorithms", ["RS256", "ES256"])
    if (
        not isinstance(algorithms, list)
        or not algorithms
        or not set(algorithms) <= set(JWT_ALGORITHMS)
    ):
        raise ConfigError(f"auth.jwt.algorithms must list some of {', '.join(JWT_ALGORITHMS)}")
    return JwtSettings(
        issuer=values["issuer"],
        audience=values["audience"],
        jwks_url=jwks_url,
        public_key_pem=pem,
        tenant_claim=values["tenant_claim"],
        algorithms=tuple(algorithms),
    )


_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)


def _log_format(env: _Env) -> str:
    """``GATEWAY_LOG_FORMAT``: ``text`` (readable lines) or ``json`` (one object a line)."""
    value = (env.get("GATEWAY_LOG_FORMAT") or "text").lower()
    if value not in ("text", "json"):
        raise ConfigError(f"GATEWAY_LOG_FORMAT is text or json, got {value!r}")
    return value


def _shutdown_grace(env: _Env) -> float:
    """``GATEWAY_SHUTDOWN_GRACE``: seconds in-flight requests and media streams get to finish
    after SIGTERM (0 cuts them at once); at most 600, past any orchestrator's patience."""
    grace = env.number("GATEWAY_SHUTDOWN_GRACE", 20.0, allow_zero=True)
    if grace > 600:
        raise ConfigError(
            f"GATEWAY_SHUTDOWN_GRACE must be between 0 and 600 seconds, got {grace:g}"
        )
    return grace


def _cors_origins(env: _Env) -> tuple[str, ...]:
    """Exact origins (``scheme://host[:port]``, no path) allowed to call from a browser, or
    ``*`` for any (then without credentials)."""
    origins = tuple(env.list("GATEWAY_CORS_ORIGINS"))
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigError(
                "GATEWAY_CORS_ORIGINS lists exact origins like https://app.example.com "
                f"(scheme, host and port only) or *, got {origin!r}"
            )
    if "*" in origins and len(origins) > 1:
        raise ConfigError("GATEWAY_CORS_ORIGINS is either * or a list of origins, not both")
    return origins


PERSISTED_QUERY_MODES = ("apq", "allowlist", "off")


def _persisted_queries(env: _Env) -> str:
    mode = (env.get("GATEWAY_PERSISTED_QUERIES") or "apq").lower()
    if mode not in PERSISTED_QUERY_MODES:
        raise ConfigError(
            f"GATEWAY_PERSISTED_QUERIES must be one of {', '.join(PERSISTED_QUERY_MODES)}, "
            f"got {mode!r}"
        )
    if mode == "allowlist" and not env.get("GATEWAY_PERSISTED_QUERIES_FILE"):
        raise ConfigError(
            "GATEWAY_PERSISTED_QUERIES=allowlist needs GATEWAY_PERSISTED_QUERIES_FILE, the "
            "manifest of the operations allowed"
        )
    return mode


def _on_off(env: _Env, name: str) -> bool:
    """A switch spelled ``on`` (the default) or ``off``: ``GATEWAY_RESPONSE_CACHE``
    (``app.responses``), ``GATEWAY_ACCESS_LOG``."""
    value = (env.get(name) or "on").lower()
    if value not in ("on", "off"):
        raise ConfigError(f"{name} must be on or off, got {value!r}")
    return value == "on"
