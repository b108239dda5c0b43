"""`Sandbox`: everything one sandbox app holds (its config, data, request log and faults)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from app.sandbox.audio import Mp3Cache
from app.sandbox.config import PROVIDERS, SandboxConfig
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
    """

    def __init__(self, config: SandboxConfig, dataset: Dataset | None = None) -> None:
        self.config = config
        self.dataset = dataset if dataset is not None else build_dataset(config)
        self.requests: list[SeenRequest] = []
        self.faults = Faults()
        self.mp3_cache = Mp3Cache()
        self.clock: Callable[[], datetime] = utc_now

    def now(self) -> datetime:
        """The sandbox's current time."""
        return self.clock()

    def account(self, provider: str) -> str:
        """The account sid / project id / workspace id served for `provider`."""
        return {
            "twilio": self.config.twilio_account_sid,
            "signalwire": self.config.signalwire_project_id,
            "bird": self.config.bird_workspace_id,
        }[provider]

    def sample_ids(self) -> dict[str, str]:
        """Per provider, the newest recording whose media is ready (absent if none is)."""
        samples: dict[str, str] = {}
        for provider in PROVIDERS:
            ready = (r for r in self.dataset.listing(provider) if r.ready)
            first = next(ready, None)
            if first is not None:
                samples[provider] = first.id
        return samples

    def requests_to(self, provider: str) -> list[SeenRequest]:
        """The logged requests that went to one provider ("twilio", ..., or "s3")."""
        return [seen for seen in self.requests if seen.provider == provider]
