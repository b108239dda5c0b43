"""Reading ``GET /metrics`` in tests: the registry is process-wide, so tests compare two
scrapes (``Scrape.value`` before and after) rather than absolute values."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.support import gateway_client, sandbox_env


@dataclass(frozen=True)
class Scrape:
    """One scrape's text and its samples, parsed by prometheus-client's own parser."""

    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]

    @classmethod
    def parse(cls, text: str) -> Scrape:
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }
        return cls(text, samples)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a series not yet created (nothing counted yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def label_values(self, name: str, label: str) -> set[str]:
        """Every value ``label`` takes in the samples named ``name``."""
        found: set[str] = set()
        for sample, labels in self.samples:
            values = dict(labels)
            if sample == name and label in values:
                found.add(values[label])
        return found


async def scrape(client: httpx.AsyncClient) -> Scrape:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


def scrape_sync(client: httpx.Client) -> Scrape:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    return Scrape.parse(response.text)


def gateway_with(
    config: SandboxConfig, sandbox_app: Starlette, **env: str
) -> contextlib.AbstractAsyncContextManager[httpx.AsyncClient]:
    """The gateway over the sandbox, with ``env`` added to the sandbox's environment."""
    settings = Settings.from_env(sandbox_env(config) | env)
    return gateway_client(settings, httpx.ASGITransport(app=sandbox_app))
