"""Configuration is read from the environment, validated, and never shows a secret."""

from __future__ import annotations

import os

import pytest

from app import cli
from app.errors import ConfigError
from app.settings import Settings

SID = "AC" + "1" * 32
KEY = "SK" + "2" * 32


def test_nothing_set_means_no_provider() -> None:
    settings = Settings.from_env({})
    assert (settings.twilio, settings.signalwire, settings.bird) == (None, None, None)
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_twilio_auth_token() -> None:
    settings = Settings.from_env({"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok-secret"})
    assert settings.twilio is not None
    assert settings.twilio.username == SID
    assert str(settings.twilio.password) == "tok-secret"
    assert settings.twilio.base_url == "https://api.twilio.com"
    assert "tok-secret" not in repr(settings)


def test_twilio_api_key_instead_of_token() -> None:
    env = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": "key-secret"}
    settings = Settings.from_env(env)
    assert settings.twilio is not None
    assert (settings.twilio.account_sid, settings.twilio.username) == (SID, KEY)
    assert "key-secret" not in repr(settings)


def test_signalwire_space_name_gets_https() -> None:
    env = {
        "SIGNALWIRE_SPACE_URL": "example.signalwire.com",
        "SIGNALWIRE_PROJECT_ID": "p",
        "SIGNALWIRE_API_TOKEN": "t-secret",
    }
    settings = Settings.from_env(env)
    assert settings.signalwire is not None
    assert settings.signalwire.base_url == "https://example.signalwire.com"
    env["SIGNALWIRE_SPACE_URL"] = "http://127.0.0.1:9000/"
    settings = Settings.from_env(env)
    assert settings.signalwire is not None
    assert settings.signalwire.base_url == "http://127.0.0.1:9000"


def test_bird_and_gateway_defaults() -> None:
    env = {
        "BIRD_WORKSPACE_ID": "w",
        "BIRD_ACCESS_KEY": "k-secret",
        "GATEWAY_HOST": "0.0.0.0",
        "GATEWAY_PORT": "9100",
    }
    settings = Settings.from_env(env)
    assert settings.bird is not None
    assert settings.bird.base_url == "https://api.bird.com"
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)
    assert "k-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_AUTH_TOKEN": "x"}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_ACCOUNT_SID": "AC123", "TWILIO_AUTH_TOKEN": "x"}, "AC followed by 32"),
        ({"TWILIO_API_KEY": KEY, "TWILIO_API_SECRET": "x"}, "TWILIO_ACCOUNT_SID"),
        (
            {"TWILIO_ACCOUNT_SID": SID, "TWILIO_API_KEY": "nope", "TWILIO_API_SECRET": "x"},
            "SK followed by 32",
        ),
        (
            {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "x", "TWILIO_BASE_URL": "ftp://x"},
            "TWILIO_BASE_URL",
        ),
        ({"SIGNALWIRE_SPACE_URL": "x.signalwire.com"}, "SIGNALWIRE_PROJECT_ID"),
        ({"BIRD_ACCESS_KEY": "k"}, "BIRD_WORKSPACE_ID"),
        ({"GATEWAY_PORT": "eighty"}, "GATEWAY_PORT"),
        ({"GATEWAY_PORT": "70000"}, "GATEWAY_PORT"),
        ({"GATEWAY_UPSTREAM_TIMEOUT": "-1"}, "GATEWAY_UPSTREAM_TIMEOUT"),
    ],
)
def test_bad_configuration_is_a_clear_error(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Settings.from_env(env)
    for value in env.values():
        if value in ("x", "k"):
            assert f"'{value}'" not in str(caught.value)


def test_max_page_size() -> None:
    assert Settings.from_env({}).max_page_size == 100
    assert Settings.from_env({"GATEWAY_MAX_PAGE_SIZE": "250"}).max_page_size == 250
    for bad in ("0", "1001", "many"):
        with pytest.raises(ConfigError, match="GATEWAY_MAX_PAGE_SIZE"):
            Settings.from_env({"GATEWAY_MAX_PAGE_SIZE": bad})


def test_serve_without_a_provider_exits_2_naming_every_provider(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith(("TWILIO_", "SIGNALWIRE_", "BIRD_")):
            monkeypatch.delenv(name)
    assert cli.main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "no provider is configured. Set TWILIO_*, SIGNALWIRE_* or BIRD_* credentials" in err
    assert "serve --demo" in err


def test_webhook_signing_keys_come_from_the_environment() -> None:
    base = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "token"}
    settings = Settings.from_env(base)
    assert settings.twilio is not None
    assert str(settings.twilio.webhook_signing_key) == "token"  # the auth token by default
    settings = Settings.from_env({**base, "TWILIO_WEBHOOK_SIGNING_KEY": "other"})
    assert settings.twilio is not None
    assert str(settings.twilio.webhook_signing_key) == "other"
    settings = Settings.from_env(
        {
            "BIRD_WORKSPACE_ID": "w",
            "BIRD_ACCESS_KEY": "k",
            "SIGNALWIRE_SPACE_URL": "example.signalwire.com",
            "SIGNALWIRE_PROJECT_ID": "p",
            "SIGNALWIRE_API_TOKEN": "t",
        }
    )
    assert settings.bird is not None and settings.bird.webhook_signing_key is None
    assert settings.signalwire is not None and settings.signalwire.webhook_signing_key is None
    settings = Settings.from_env(
        {"BIRD_WORKSPACE_ID": "w", "BIRD_ACCESS_KEY": "k", "BIRD_WEBHOOK_SIGNING_KEY": "b"}
    )
    assert settings.bird is not None and str(settings.bird.webhook_signing_key) == "b"
