"""`Sandbox`: everything one sandbox app holds (its config, data, request log and faults)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.sandbox.audio import Mp3Cache
from app.sandbox.chaos import Chaos
from app.sandbox.config import DEFAULT_PUBLIC_URL, PROVIDERS, SandboxAccount, SandboxConfig
from app.sandbox.data import Dataset
from app.sandbox.delivery import Courier, SentCallback
from app.sandbox.faults import Faults
from app.sandbox.lifecycle import Lifecycle
from app.sandbox.middleware import SeenRequest
from app.sandbox.seeding import build_dataset
from app.sandbox.transcriptions import TranscriptionStore


def utc_now() -> datetime:
    """The wall clock, in UTC."""
    return datetime.now(UTC)


class Sandbox:
    """The state behind one sandbox app, reachable as `app.state.sandbox`.

    Tests mutate `dataset`, read `requests`, queue `faults`, and may replace `clock` (a callable
    returning an aware datetime) to move time, e.g. past the expiry of a presigned URL.
    `config.anchor` is always set: to the given config's, else read from the wall clock once,
    here, so `build_dataset(sandbox.config)` rebuilds the same data even after midnight.
    `accounts(provider)` names every account served and the credentials each accepts.

    `lifecycle` moves recordings through their states (`app.sandbox.lifecycle`); each change
    is called back to the account's callback URL (`callback_url`, set from
    `SandboxConfig.callback_urls` or by `set_callback_url`), and every attempt is logged in
    `callbacks` (`app.sandbox.delivery.SentCallback`) by `courier`, whose own `clock` (the wall
    clock) dates and signs them. `public_url` is where the sandbox is reached (the media links
    in callbacks).
    """

    def __init__(self, config: SandboxConfig, dataset: Dataset | None = None) -> None:
        self.config = config.pinned(utc_now())
        self.dataset = dataset if dataset is not None else build_dataset(self.config)
        #: Transcriptions of the recordings (``app.sandbox.transcriptions``).
        self.transcriptions = TranscriptionStore.seeded(self.dataset)
        self.requests: list[SeenRequest] = []
        self.faults = Faults()
        self.chaos = Chaos(config.failure_rate, config.seed)
        self.mp3_cache = Mp3Cache()
        self.clock: Callable[[], datetime] = utc_now
        self._accounts = {provider: config.accounts(provider) for provider in PROVIDERS}
        self.public_url = config.public_url or DEFAULT_PUBLIC_URL
        self._callback_urls: dict[tuple[str, str], str] = {}
        for key, url in config.callback_urls.items():
            self._callback_urls[self._account_key(key)] = url
        self.callbacks: list[SentCallback] = []
        # Deliveries are signed and logged on the wall clock, not `clock`: a receiver checks
        # Bird's timestamps against its own (tests may replace `courier.clock`).
        self.courier = Courier(
            self.callbacks,
            utc_now,
            attempts=config.callback_attempts,
            backoff=config.callback_backoff,
            timeout=config.callback_timeout,
        )
        self.lifecycle = Lifecycle(self)

    def now(self) -> datetime:
        """The sandbox's current time."""
        return self.clock()

    def accounts(self, provider: str) -> tuple[SandboxAccount, ...]:
        """Every account served for `provider`, with its credentials; index 0 is the demo's."""
        return self._accounts[provider]

    def account(self, provider: str, index: int = 0) -> str:
        """The account sid / project id / workspace id of account `index` of `provider`."""
        return self._accounts[provider][index].account

    def account_of(self, provider: str, account: str) -> SandboxAccount:
        """The account of `provider` whose id is `account`; KeyError if none is."""
        for each in self._accounts[provider]:
            if each.account == account:
                return each
        raise KeyError(f"{provider} has no sandbox account {account!r}")

    def callback_url(self, provider: str, account: str) -> str | None:
        """Where the account's status callbacks go, or None (it sends none)."""
        return self._callback_urls.get((provider, account))

    def set_callback_url(self, provider: str, url: str | None, account_index: int = 0) -> None:
        """Point account `account_index`'s callbacks at `url` (None: send none)."""
        key = (provider, self.account(provider, account_index))
        if url is None:
            self._callback_urls.pop(key, None)
        else:
            self._callback_urls[key] = url

    def _account_key(self, name: str) -> tuple[str, str]:
        """(provider, account id) named by a provider (its account 0) or an account id."""
        if name in PROVIDERS:
            return name, self.account(name)
        for provider in PROVIDERS:
            if any(each.account == name for each in self._accounts[provider]):
                return provider, name
        raise ValueError(f"{name!r} names no provider or account of the sandbox")

    def sample_ids(self, account_index: int = 0) -> dict[str, str]:
        """Per provider, the newest recording of account `account_index` whose media is ready
        (absent if none is)."""
        samples: dict[str, str] = {}
        for provider in PROVIDERS:
            listing = self.dataset.listing(provider, self.account(provider, account_index))
            first = next((r for r in listing if r.ready), None)
            if first is not None:
                samples[provider] = first.id
        return samples

    def requests_to(self, provider: str) -> list[SeenRequest]:
        """The logged requests that went to one provider ("twilio", ..., or "s3")."""
        return [seen for seen in self.requests if seen.provider == provider]
