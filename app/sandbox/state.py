"""`Sandbox`: everything one sandbox app holds (its config, data, request log and faults)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.sandbox.audio import Mp3Cache
from app.sandbox.chaos import Chaos
from app.sandbox.config import PROVIDERS, SandboxAccount, SandboxConfig
from app.sandbox.data import Dataset
from app.sandbox.faults import Faults
from app.sandbox.middleware import SeenRequest
from app.sandbox.seeding import build_dataset


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
    """

    def __init__(self, config: SandboxConfig, dataset: Dataset | None = None) -> None:
        self.config = config.pinned(utc_now())
        self.dataset = dataset if dataset is not None else build_dataset(self.config)
        self.requests: list[SeenRequest] = []
        self.faults = Faults()
        self.chaos = Chaos(config.failure_rate, config.seed)
        self.mp3_cache = Mp3Cache()
        self.clock: Callable[[], datetime] = utc_now
        self._accounts = {provider: config.accounts(provider) for provider in PROVIDERS}

    def now(self) -> datetime:
        """The sandbox's current time."""
        return self.clock()

    def accounts(self, provider: str) -> tuple[SandboxAccount, ...]:
        """Every account served for `provider`, with its credentials; index 0 is the demo's."""
        return self._accounts[provider]

    def account(self, provider: str, index: int = 0) -> str:
        """The account sid / project id / workspace id of account `index` of `provider`."""
        return self._accounts[provider][index].account

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
