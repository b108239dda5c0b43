"""``GATEWAY_CONFIG``: tenants from a TOML file, and every way a config stops start-up."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app.errors import ConfigError
from app.settings import DEFAULT_SCOPES, Settings

SID = "AC" + "a" * 32
TOKEN = "twilio-token-0123456789"
HASH = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def load(tmp_path: Path, text: str, **env: str) -> Settings:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return Settings.from_env({"GATEWAY_CONFIG": str(path), **env})


def refused(tmp_path: Path, text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **env)
    return caught.value.message


COMPLETE = f"""
[tenants.acme]
api_keys = ["{HASH}"]
rate_limit = "600/minute"
[tenants.acme.twilio]
account_sid = "{SID}"
auth_token = "env:ACME_TWILIO_AUTH_TOKEN"
base_url = "http://twilio.test"

[tenants.globex]
api_keys = ["sha256:{"1" * 64}"]
scopes = ["recordings:read"]
[tenants.globex.signalwire]
space_url = "globex.signalwire.test"
project_id = "p-1"
api_token = "env:GLOBEX_SW"
[tenants.globex.bird]
workspace_id = "ws-1"
access_key = "env:GLOBEX_BIRD"

[auth.jwt]
issuer = "https://id.example.com/"
audience = "recording-gateway"
jwks_url = "https://id.example.com/.well-known/jwks.json"
"""
SECRETS = {"ACME_TWILIO_AUTH_TOKEN": TOKEN, "GLOBEX_SW": "sw-secret", "GLOBEX_BIRD": "bird-key"}


def test_a_complete_config_declares_each_tenant(tmp_path: Path) -> None:
    settings = load(tmp_path, COMPLETE, **SECRETS)
    tenants = settings.tenant_settings()
    assert sorted(tenants) == ["acme", "globex"]
    acme, globex = tenants["acme"], tenants["globex"]
    assert acme.api_keys == (HASH.removeprefix("sha256:"),)
    assert acme.scopes == DEFAULT_SCOPES
    assert acme.rate_limit == "600/minute"
    assert acme.twilio is not None and str(acme.twilio.password) == TOKEN
    assert acme.twilio.base_url == "http://twilio.test"
    assert acme.signalwire is None and acme.bird is None
    assert globex.scopes == frozenset({"recordings:read"})
    assert globex.signalwire is not None
    assert globex.signalwire.base_url == "https://globex.signalwire.test"
    assert globex.bird is not None and str(globex.bird.access_key) == "bird-key"
    assert settings.jwt is not None and settings.jwt.tenant_claim == "tenant"
    assert settings.jwt.algorithms == ("RS256", "ES256")
    assert settings.client_auth


def test_the_environment_mode_is_the_default_tenant() -> None:
    settings = Settings.from_env(
        {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "GATEWAY_API_KEYS": HASH}
    )
    (tenant,) = settings.tenant_settings().values()
    assert tenant.name == "default"
    assert tenant.twilio == settings.twilio
    assert tenant.api_keys == (HASH.removeprefix("sha256:"),)
    assert settings.client_auth
    open_env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN}
    assert not Settings.from_env(open_env).client_auth


def test_a_literal_secret_works_with_a_warning_naming_its_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = f'[tenants.a.twilio]\naccount_sid = "{SID}"\nauth_token = "{TOKEN}"\n'
    with caplog.at_level(logging.WARNING, logger="app.settings"):
        settings = load(tmp_path, text)
    assert settings.tenant_settings()["a"].twilio is not None
    assert "tenants.a.twilio.auth_token holds a literal secret" in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[tenants.a.twlio]\naccount_sid = "x"\n', "tenants.a: unknown key 'twlio'"),
        ("[tenants.a]\nscopes = []\n", "tenants.a has no provider"),
        (
            '[tenants.a]\napi_keys = ["sha256:abc"]\n[tenants.a.bird]\nworkspace_id = "w"\n'
            'access_key = "env:K"\n',
            "tenants.a.api_keys[0] must be 'sha256:' and 64 hex digits",
        ),
        (
            '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:UNSET_VARIABLE"\n',
            "tenants.a.bird.access_key names the environment variable 'UNSET_VARIABLE'",
        ),
        (
            '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\nregion = "eu"\n',
            "tenants.a.bird: unknown key 'region'",
        ),
        (
            '[tenants.a]\nscopes = ["recordings:write"]\n[tenants.a.bird]\nworkspace_id = "w"\n'
            'access_key = "env:K"\n',
            "tenants.a.scopes: unknown scope 'recordings:write'",
        ),
        (
            '[tenants.a]\nrate_limit = "lots"\n[tenants.a.bird]\nworkspace_id = "w"\n'
            'access_key = "env:K"\n',
            "tenants.a.rate_limit must look like 600/minute",
        ),
        ('[tenants.a.twilio]\naccount_sid = "AC12"\nauth_token = "env:K"\n', "AC followed by"),
        ("[tenants.a.bird]\n", "tenants.a.bird is empty"),
        ("", "declares no tenant"),
        ("[tenant.a]\n", "unknown key 'tenant'"),
        ("[tenants.a\n", "is not valid TOML"),
        (
            '[tenants."a b".bird]\nworkspace_id = "w"\naccess_key = "env:K"\n',
            "a tenant name is letters",
        ),
        (
            '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\n[auth.jwt]\n'
            'issuer = "i"\naudience = "a"\n',
            "exactly one of jwks_url and public_key_file",
        ),
        (
            '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\n[auth.jwt]\n'
            'issuer = "i"\naudience = "a"\njwks_url = "https://i/jwks"\nalgorithms = ["HS256"]\n',
            "auth.jwt.algorithms must list some of",
        ),
        (
            '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\n[auth.jwt]\n'
            'issuer = "i"\naudience = "a"\njwks_url = "http://idp.example.com/jwks"\n',
            "auth.jwt.jwks_url must be https",
        ),
    ],
)
def test_a_bad_config_stops_start_up_naming_the_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in refused(tmp_path, text, K="secret-value")


def test_the_same_key_hash_in_two_tenants_is_refused(tmp_path: Path) -> None:
    bird = '[tenants.{0}]\napi_keys = ["{1}"]\n[tenants.{0}.bird]\nworkspace_id = "w"\n'
    bird += 'access_key = "env:K"\n'
    text = bird.format("a", HASH) + bird.format("b", HASH)
    assert "also listed by tenants.a" in refused(tmp_path, text, K="secret-value")


def test_no_message_echoes_a_secret_or_a_pasted_key(tmp_path: Path) -> None:
    pasted = "rgk_" + "s" * 43
    text = f'[tenants.a]\napi_keys = ["{pasted}"]\n[tenants.a.bird]\nworkspace_id = "w"\n'
    text += 'access_key = "bird-secret-value"\n'
    message = refused(tmp_path, text)
    assert pasted not in message and "bird-secret-value" not in message


def test_provider_variables_beside_a_config_are_refused(tmp_path: Path) -> None:
    text = '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\n'
    message = refused(tmp_path, text, K="k", TWILIO_ACCOUNT_SID=SID, GATEWAY_API_KEYS=HASH)
    assert "TWILIO_ACCOUNT_SID, GATEWAY_API_KEYS would be ignored" in message


def test_an_unreadable_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        Settings.from_env({"GATEWAY_CONFIG": str(tmp_path / "missing.toml")})


def pem_of(bits: int) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def test_a_public_key_file_is_read_at_start(tmp_path: Path) -> None:
    pem = tmp_path / "idp.pem"
    pem.write_bytes(pem_of(2048))
    text = '[tenants.a.bird]\nworkspace_id = "w"\naccess_key = "env:K"\n[auth.jwt]\n'
    text += f'issuer = "i"\naudience = "a"\npublic_key_file = "{pem}"\n'
    settings = load(tmp_path, text, K="k")
    assert settings.jwt is not None and settings.jwt.public_key_pem == pem.read_bytes()
    assert "BEGIN" not in repr(settings.jwt)
    pem.write_bytes(b"-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n")
    assert "holds no PEM public key" in refused(tmp_path, text, K="k")
    pem.write_bytes(pem_of(1024))
    assert "2048 bits or more" in refused(tmp_path, text, K="k")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("GATEWAY_API_KEYS", "sha256:12", "GATEWAY_API_KEYS[0] must be 'sha256:'"),
        ("GATEWAY_RATE_LIMIT", "fast", "GATEWAY_RATE_LIMIT must look like 600/minute"),
        ("GATEWAY_MAX_COST", "0", "GATEWAY_MAX_COST must be between"),
        ("GATEWAY_INTROSPECTION", "maybe", "GATEWAY_INTROSPECTION must be 1 or 0"),
    ],
)
def test_bad_access_variables_are_refused(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[")):
        Settings.from_env({name: value})


def test_request_limits_have_their_defaults_and_can_be_set() -> None:
    limits = Settings.from_env({}).limits
    assert (limits.max_body_bytes, limits.max_tokens, limits.max_depth) == (65536, 2000, 12)
    assert (limits.max_aliases, limits.max_cost, limits.introspection) == (100, 500, False)
    changed = Settings.from_env({"GATEWAY_MAX_COST": "50", "GATEWAY_INTROSPECTION": "1"}).limits
    assert (changed.max_cost, changed.introspection) == (50, True)
