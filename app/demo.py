"""Demo mode: the gateway pointed at the built-in sandbox providers, no credentials needed.

Each provider is configured the way an operator would configure it, through the
environment its registry entry gives for the sandbox (``app.providers.sandbox_env``), so
the demo goes through the same validation as a real deployment.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from starlette.datastructures import Secret

from app.providers import REGISTRY, sandbox_env
from app.sandbox.config import SandboxConfig
from app.settings import Settings


def demo_settings(settings: Settings, sandbox_url: str, config: SandboxConfig) -> Settings:
    """``settings`` with every provider pointed at the sandbox at ``sandbox_url``."""
    sandboxed = Settings.from_env(sandbox_env(config, sandbox_url))
    sections: dict[str, Any] = {e.section: e.settings(sandboxed) for e in REGISTRY.values()}
    return replace(
        settings,
        # A fresh key per run: demo links die with the process, which is what a demo wants.
        signing_keys=settings.signing_keys or (Secret(secrets.token_urlsafe(32)),),
        **sections,
    )


def banner(gateway_url: str, sample_ids: Mapping[str, str]) -> str:
    """What ``serve --demo`` prints: where GraphiQL is, and a query that works there."""
    refs = "\n".join(
        f'  {name}: recording(provider: {name.upper()}, id: "{rid}") {{ ...fields }}'
        for name, rid in sample_ids.items()
    )
    return (
        f"Recording Gateway demo: GraphiQL at {gateway_url}/graphql\n"
        f"Paste this query:\n\n"
        f"query Demo {{\n{refs}\n}}\n"
        "fragment fields on Recording {\n"
        "  provider id status providerStatus source from to channels durationSeconds\n"
        "  startedAt endedAt price { amount currency } mediaFormats mediaUrl\n"
        "}\n\n"
    )
