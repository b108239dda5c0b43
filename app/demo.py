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

from app.access.keys import key_hash
from app.providers import REGISTRY, sandbox_env
from app.sandbox.config import SandboxConfig
from app.settings import Settings


def demo_settings(
    settings: Settings, sandbox_url: str, config: SandboxConfig, *, api_key: str | None = None
) -> Settings:
    """``settings`` with every provider pointed at the sandbox at ``sandbox_url``, in the
    environment mode (one tenant), introspection on; ``api_key`` protects it if given."""
    sandboxed = Settings.from_env(sandbox_env(config, sandbox_url))
    sections: dict[str, Any] = {e.section: e.settings(sandboxed) for e in REGISTRY.values()}
    return replace(
        settings,
        # A fresh key per run: demo links die with the process, which is what a demo wants.
        signing_keys=settings.signing_keys or (Secret(secrets.token_urlsafe(32)),),
        tenants=None,
        jwt=None,
        api_keys=(key_hash(api_key),) if api_key else (),
        limits=replace(settings.limits, introspection=True),
        # A frontend on any origin may try the demo (without credentials: app.cors).
        cors_origins=settings.cors_origins or ("*",),
        **sections,
    )


def banner(gateway_url: str, sample_ids: Mapping[str, str], api_key: str | None = None) -> str:
    """What ``serve --demo`` prints: where GraphiQL is, who may call, and a query that works."""
    if api_key is None:
        access = "Open to anyone on this machine: it listens on loopback only, with no API key.\n"
    else:
        access = (
            "It listens beyond loopback, so it requires this demo API key (valid for this run):\n"
            f"  Authorization: Bearer {api_key}\n"
        )
    return (
        f"Recording Gateway demo: GraphiQL at {gateway_url}/graphql\n{access}"
        f"Paste this query:\n\n{demo_query(sample_ids)}\n"
    )


def demo_query(sample_ids: Mapping[str, str]) -> str:
    """A query for one sample recording per provider: the banner's, and GraphiQL's default."""
    refs = "\n".join(
        f'  {name}: recording(provider: {name.upper()}, id: "{rid}") {{ ...fields }}'
        for name, rid in sample_ids.items()
    )
    return (
        f"query Demo {{\n{refs}\n}}\n"
        "fragment fields on Recording {\n"
        "  provider id status providerStatus source from to channels durationSeconds\n"
        "  startedAt endedAt price { amount currency } mediaFormats mediaUrl\n"
        "}\n"
    )
