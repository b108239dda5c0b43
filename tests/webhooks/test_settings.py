"""The webhook receivers' settings."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.settings import Settings


def test_defaults_cover_birds_eight_hours_of_retries() -> None:
    settings = Settings.from_env({})
    assert settings.webhook_dedupe_ttl == 86400
    assert settings.webhook_max_pending == 1000


def test_the_settings_are_read_and_checked() -> None:
    env = {"GATEWAY_WEBHOOK_DEDUPE_TTL": "3600", "GATEWAY_WEBHOOK_MAX_PENDING": "5"}
    settings = Settings.from_env(env)
    assert (settings.webhook_dedupe_ttl, settings.webhook_max_pending) == (3600, 5)
    for name, value in (
        ("GATEWAY_WEBHOOK_DEDUPE_TTL", "10"),
        ("GATEWAY_WEBHOOK_MAX_PENDING", "0"),
        ("GATEWAY_WEBHOOK_DEDUPE_TTL", "a day"),
    ):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({name: value})
