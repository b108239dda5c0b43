"""Media settings, and the refusal to start without a signing key."""

from __future__ import annotations

import pytest

from app import cli
from app.errors import ConfigError
from app.main import create_app
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.support import sandbox_env


def test_media_defaults() -> None:
    settings = Settings.from_env({})
    assert (settings.public_url, settings.media_max_ttl) == (None, 3600)


def test_public_url_and_max_ttl() -> None:
    env = {"GATEWAY_PUBLIC_URL": "https://rec.example.com/gw/", "GATEWAY_MEDIA_MAX_TTL": "600"}
    settings = Settings.from_env(env)
    assert settings.public_url == "https://rec.example.com/gw"
    assert settings.media_max_ttl == 600


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEWAY_PUBLIC_URL": "ftp://rec.example.com"}, "GATEWAY_PUBLIC_URL"),
        ({"GATEWAY_PUBLIC_URL": "rec.example.com"}, "GATEWAY_PUBLIC_URL"),
        ({"GATEWAY_PUBLIC_URL": "https://rec.example.com/?a=1"}, "GATEWAY_PUBLIC_URL"),
        ({"GATEWAY_MEDIA_MAX_TTL": "0"}, "GATEWAY_MEDIA_MAX_TTL"),
        ({"GATEWAY_MEDIA_MAX_TTL": "soon"}, "GATEWAY_MEDIA_MAX_TTL"),
        ({"GATEWAY_SIGNING_KEYS": "short"}, "at least 16"),
    ],
)
def test_bad_media_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_create_app_refuses_to_build_without_a_key() -> None:
    env = sandbox_env(SandboxConfig())
    del env["GATEWAY_SIGNING_KEYS"]
    with pytest.raises(ConfigError, match="GATEWAY_SIGNING_KEYS is not set"):
        create_app(Settings.from_env(env))


def test_serve_without_a_key_exits_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = sandbox_env(SandboxConfig())
    del env["GATEWAY_SIGNING_KEYS"]
    monkeypatch.delenv("GATEWAY_SIGNING_KEYS", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "configuration error: GATEWAY_SIGNING_KEYS is not set" in err
    assert "secrets.token_urlsafe" in err, "it says how to make a key"
