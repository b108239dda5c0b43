"""Settings of the sandbox providers; the defaults are the demo credentials.

Each provider serves `accounts_per_provider` accounts. Account 0 is the one the config's own
fields name (the demo's credentials); the others get credentials derived from the seed and their
index, in each provider's real formats, so a multi-tenant gateway can be pointed at several
accounts of one provider and its isolation tested against recordings of the same shape in each.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType

DEMO_TWILIO_ACCOUNT_SID = "AC0f3e5d7c9b1a2e4d6c8b0a1f3e5d7c9b"
DEMO_TWILIO_AUTH_TOKEN = "5e1c0b9d8a7f6e5d4c3b2a1908f7e6d5"
DEMO_TWILIO_API_KEY = "SK7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b"
DEMO_TWILIO_API_SECRET = "dEm0sEcReTfOrThEtWiLiOsAnDbOx0001"
DEMO_SIGNALWIRE_PROJECT_ID = "720796a0-8ee9-4350-83bd-2d07a3121f1e"
DEMO_SIGNALWIRE_API_TOKEN = "PT3f9b1d7e5c3a1f9e7d5c3b1a9f7e5d3c1b9a7f5e3d1c9b"
DEMO_BIRD_WORKSPACE_ID = "8bc02f53-87ac-48d2-b4fd-c2cf856a305f"
DEMO_BIRD_ACCESS_KEY = "demo-bird-access-key-5b74ee9e9d45473a82cdf1f7feea6bbd"
#: The demo space's Signing Key (SignalWire signs its callbacks with it, not the API token).
DEMO_SIGNALWIRE_SIGNING_KEY = "PSK_9c41d7e2b05a8f36c1e9d4a7b2f05c83e6a1d9b4"
#: The signing key of the demo workspace's webhook subscription.
DEMO_BIRD_SIGNING_KEY = "demo-bird-signing-key-0e6f2b9c41d7a8e3"

PROVIDERS = ("twilio", "signalwire", "bird")


@dataclass(frozen=True, slots=True)
class SandboxAccount:
    """One account of one sandbox provider and the credentials it accepts.

    `account` is the Twilio account sid, SignalWire project id or Bird workspace id (the id in
    the API paths). `secret` is the Twilio auth token, SignalWire API token or Bird access key.
    Only Twilio accounts have an API key pair (`api_key`, `api_secret`), which Twilio accepts
    in place of the sid and token. `signing_key` signs the account's status callbacks: Twilio's
    auth token, SignalWire's space Signing Key, the Bird webhook subscription's signing key.
    Secrets are left out of `repr()`.
    """

    provider: str
    account: str
    secret: str = field(repr=False)
    api_key: str | None = None
    api_secret: str | None = field(default=None, repr=False)
    signing_key: str = field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """What the three sandbox providers accept and serve.

    The defaults (`DEMO`) are the credentials of demo mode; they are account 0 of each provider
    (see `accounts`). Secrets are left out of `repr()`.

    `anchor` is the end of the recordings' 90 days (`app.sandbox.seeding`): None (the default)
    means the start of the current UTC day, read from the clock when the data is built, so the
    demo's data is recent whenever it runs and the same all day long. A test that builds the
    data twice and compares pins it, so that midnight cannot fall between the two builds
    (`Sandbox` pins it in its own `config` when it builds its data).
    """

    twilio_account_sid: str = DEMO_TWILIO_ACCOUNT_SID
    twilio_auth_token: str = field(default=DEMO_TWILIO_AUTH_TOKEN, repr=False)
    twilio_api_key: str = DEMO_TWILIO_API_KEY
    twilio_api_secret: str = field(default=DEMO_TWILIO_API_SECRET, repr=False)
    signalwire_project_id: str = DEMO_SIGNALWIRE_PROJECT_ID
    signalwire_api_token: str = field(default=DEMO_SIGNALWIRE_API_TOKEN, repr=False)
    bird_workspace_id: str = DEMO_BIRD_WORKSPACE_ID
    bird_access_key: str = field(default=DEMO_BIRD_ACCESS_KEY, repr=False)
    signalwire_signing_key: str = field(default=DEMO_SIGNALWIRE_SIGNING_KEY, repr=False)
    bird_signing_key: str = field(default=DEMO_BIRD_SIGNING_KEY, repr=False)
    recordings_per_provider: int = 36
    seed: int = 2026
    latency: float = 0.0
    honor_range: bool = True
    twilio_media_auth: bool = True
    presign_ttl: int = 600
    s3_base_url: str | None = None
    accounts_per_provider: int = 2
    #: Share of provider requests failed at random (`app.sandbox.chaos`), drawn from `seed`.
    failure_rate: float = 0.0
    #: Where each account's status callbacks go: a provider name (its account 0) or an account
    #: id (any account) -> URL. Accounts without one send none (`app.sandbox.lifecycle`).
    callback_urls: Mapping[str, str] = field(default_factory=dict, hash=False)
    #: Seconds between two ticks of the recordings' lifecycle while the app runs; 0: no clock
    #: (tests call `sandbox.lifecycle.step()`).
    lifecycle_interval: float = 0.0
    #: Where the sandbox is reached, for the `RecordingUrl` of its callbacks (no request to
    #: read it from); None: `DEFAULT_PUBLIC_URL`.
    public_url: str | None = None
    #: Attempts per callback (the first and the retries), the first retry's delay in seconds
    #: (doubling after), and each attempt's timeout.
    callback_attempts: int = 4
    callback_backoff: float = 1.0
    callback_timeout: float = 10.0
    anchor: datetime | None = None

    def __post_init__(self) -> None:
        if self.recordings_per_provider < 0:
            raise ValueError("recordings_per_provider must be >= 0")
        if self.accounts_per_provider < 1:
            raise ValueError("accounts_per_provider must be >= 1")
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError("failure_rate must be between 0 and 1")
        if self.presign_ttl <= 0:
            raise ValueError("presign_ttl must be > 0")
        if self.s3_base_url is not None:
            object.__setattr__(self, "s3_base_url", self.s3_base_url.rstrip("/"))
        if self.public_url is not None:
            object.__setattr__(self, "public_url", self.public_url.rstrip("/"))
        if self.lifecycle_interval < 0:
            raise ValueError("lifecycle_interval must be >= 0 (0: no clock)")
        if self.callback_attempts < 1:
            raise ValueError("callback_attempts must be >= 1")
        if self.callback_backoff < 0 or self.callback_timeout <= 0:
            raise ValueError("callback_backoff must be >= 0 and callback_timeout > 0")
        for key, url in self.callback_urls.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"callback URL for {key!r} must be http(s), got {url!r}")
        # Frozen, as the rest of the config: a copy nobody can change behind the sandbox.
        object.__setattr__(self, "callback_urls", MappingProxyType(dict(self.callback_urls)))
        if self.anchor is not None:
            if self.anchor.utcoffset() is None:
                raise ValueError("anchor must be an aware datetime (with a time zone)")
            object.__setattr__(self, "anchor", self.anchor.astimezone(UTC))

    def anchor_at(self, now: datetime) -> datetime:
        """`anchor`, or if unset the start of `now`'s UTC day (see the class docstring)."""
        return self.anchor if self.anchor is not None else day_start(now)

    def pinned(self, now: datetime) -> SandboxConfig:
        """This config with its `anchor` set, to `anchor_at(now)`."""
        return self if self.anchor is not None else replace(self, anchor=day_start(now))

    def accounts(self, provider: str) -> tuple[SandboxAccount, ...]:
        """Every account `provider` serves, `accounts_per_provider` of them; index 0 is the
        one the fields above name, the others are derived from `seed` and their index."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        first = self._first_account(provider)
        derived = (
            _derived_account(provider, self.seed, index)
            for index in range(1, self.accounts_per_provider)
        )
        return (first, *derived)

    def _first_account(self, provider: str) -> SandboxAccount:
        if provider == "twilio":
            return SandboxAccount(
                provider,
                self.twilio_account_sid,
                self.twilio_auth_token,
                self.twilio_api_key,
                self.twilio_api_secret,
                signing_key=self.twilio_auth_token,  # Twilio signs with the auth token
            )
        if provider == "signalwire":
            return SandboxAccount(
                provider,
                self.signalwire_project_id,
                self.signalwire_api_token,
                signing_key=self.signalwire_signing_key,
            )
        return SandboxAccount(
            provider,
            self.bird_workspace_id,
            self.bird_access_key,
            signing_key=self.bird_signing_key,
        )


def day_start(moment: datetime) -> datetime:
    """Midnight UTC at the start of `moment`'s UTC day."""
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, utc.day, tzinfo=UTC)


def _derived_account(provider: str, seed: int, index: int) -> SandboxAccount:
    """Credentials of account `index` >= 1, in the provider's formats, the same on every run."""

    def draw(purpose: str) -> str:
        material = f"sandbox-account:{seed}:{provider}:{index}:{purpose}".encode()
        return hashlib.sha256(material).hexdigest()

    if provider == "twilio":
        token = draw("auth-token")[:32]
        return SandboxAccount(
            provider,
            account=f"AC{draw('sid')[:32]}",
            secret=token,
            api_key=f"SK{draw('api-key')[:32]}",
            api_secret=draw("api-secret")[:32],
            signing_key=token,
        )
    if provider == "signalwire":
        return SandboxAccount(
            provider,
            _uuid(draw("project")),
            f"PT{draw('api-token')[:48]}",
            signing_key=f"PSK_{draw('signing-key')[:40]}",
        )
    return SandboxAccount(
        provider,
        _uuid(draw("workspace")),
        f"sandbox-bird-{draw('key')[:40]}",
        signing_key=f"sandbox-bird-signing-{draw('signing-key')[:32]}",
    )


def _uuid(digest: str) -> str:
    """A version-4 UUID string (the form the providers' ids take) from 32 hex digits."""
    return str(uuid.UUID(hex=digest[:32], version=4))


#: Where the sandbox says it is reached when `SandboxConfig.public_url` is not set: the
#: address `recording-gateway sandbox` listens on by default.
DEFAULT_PUBLIC_URL = "http://127.0.0.1:9000"

DEMO = SandboxConfig()
