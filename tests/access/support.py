"""Tenants for tests: a config file whose tenants read the sandbox's accounts, and their keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.access.keys import key_hash
from app.sandbox import SandboxConfig
from tests.support import SANDBOX_URL, SIGNING_KEY


@dataclass(frozen=True)
class TenantSpec:
    """One tenant: its API key, scopes, rate limit, and which sandbox account (by index) it
    reads at each provider."""

    key: str
    accounts: Mapping[str, int] = field(
        default_factory=lambda: {"twilio": 0, "signalwire": 0, "bird": 0}
    )
    scopes: Sequence[str] | None = None
    rate_limit: str | None = None
    #: Each provider section also names the account's webhook signing key (Twilio's is its
    #: auth token anyway), so the tenant has a receiver for every provider.
    webhooks: bool = False


def write_config(
    path: Path,
    config: SandboxConfig,
    tenants: Mapping[str, TenantSpec],
    *,
    base_url: str = SANDBOX_URL,
    jwt: str = "",
) -> dict[str, str]:
    """Write the TOML for ``tenants`` at ``path``; the environment that serves it."""
    env = {"GATEWAY_CONFIG": str(path), "GATEWAY_SIGNING_KEYS": SIGNING_KEY}
    lines: list[str] = []
    for name, spec in tenants.items():
        lines += [f"[tenants.{name}]", f'api_keys = ["sha256:{key_hash(spec.key)}"]']
        if spec.scopes is not None:
            lines.append("scopes = [" + ", ".join(f'"{s}"' for s in spec.scopes) + "]")
        if spec.rate_limit is not None:
            lines.append(f'rate_limit = "{spec.rate_limit}"')
        for provider, index in spec.accounts.items():
            account = config.accounts(provider)[index]
            variable = f"SECRET_{name.upper()}_{provider.upper()}"
            env[variable] = account.secret
            lines.append(f"[tenants.{name}.{provider}]")
            if provider == "twilio":
                lines += [f'account_sid = "{account.account}"', f'base_url = "{base_url}"']
                lines.append(f'auth_token = "env:{variable}"')
            elif provider == "signalwire":
                lines += [f'space_url = "{base_url}"', f'project_id = "{account.account}"']
                lines.append(f'api_token = "env:{variable}"')
            else:
                lines += [f'workspace_id = "{account.account}"', f'base_url = "{base_url}"']
                lines.append(f'access_key = "env:{variable}"')
            if spec.webhooks and provider != "twilio":
                env[f"{variable}_WEBHOOK"] = account.signing_key
                lines.append(f'webhook_signing_key = "env:{variable}_WEBHOOK"')
    path.write_text("\n".join(lines) + "\n" + jwt)
    return env


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}
