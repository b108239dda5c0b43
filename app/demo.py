"""Demo mode: the gateway pointed at the built-in sandbox providers, no credentials needed."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import replace

from starlette.datastructures import Secret

from app.sandbox.config import SandboxConfig
from app.settings import BirdSettings, Settings, SignalWireSettings, TwilioSettings


def demo_settings(settings: Settings, sandbox_url: str, config: SandboxConfig) -> Settings:
    """``settings`` with all three providers pointed at the sandbox at ``sandbox_url``."""
    return replace(
        settings,
        # A fresh key per run: demo links die with the process, which is what a demo wants.
        signing_keys=settings.signing_keys or (Secret(secrets.token_urlsafe(32)),),
        twilio=TwilioSettings(
            account_sid=config.twilio_account_sid,
            username=config.twilio_account_sid,
            password=Secret(config.twilio_auth_token),
            base_url=sandbox_url,
        ),
        signalwire=SignalWireSettings(
            base_url=sandbox_url,
            project_id=config.signalwire_project_id,
            api_token=Secret(config.signalwire_api_token),
        ),
        bird=BirdSettings(
            workspace_id=config.bird_workspace_id,
            access_key=Secret(config.bird_access_key),
            base_url=sandbox_url,
        ),
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
