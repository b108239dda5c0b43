"""The upstream settings: each variable read, each bad value a ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from app.errors import ConfigError
from app.settings import UPSTREAM_TRANSPORTS, Settings, UpstreamSettings
from app.upstream import TRANSPORTS, build_transport
from app.upstream.aiohttp_transport import AiohttpTransport
from app.upstream.httpx_transport import HttpxTransport


def test_defaults() -> None:
    upstream = Settings.from_env({}).upstream
    assert upstream == UpstreamSettings(
        transport="aiohttp", max_connections=400, proxies={}, no_proxy=None, ca_file=None
    )
    assert isinstance(build_transport(Settings.from_env({})), AiohttpTransport)


def test_every_transport_the_settings_accept_can_be_built() -> None:
    assert set(TRANSPORTS) == set(UPSTREAM_TRANSPORTS)
    settings = Settings.from_env({"GATEWAY_UPSTREAM_TRANSPORT": "HTTPX"})
    assert isinstance(build_transport(settings), HttpxTransport)


def test_proxy_variables_are_read_only_with_trust_env() -> None:
    env = {
        "HTTPS_PROXY": "http://user:pass-secret@proxy.internal:3128",
        "http_proxy": "http://proxy.internal:3128",
        "HTTP_PROXY": "http://loses-to-the-lower-case:1",
        "NO_PROXY": "localhost,.internal",
    }
    assert Settings.from_env(env).upstream.proxies == {}
    upstream = Settings.from_env({**env, "GATEWAY_UPSTREAM_TRUST_ENV": "1"}).upstream
    assert {scheme: str(url) for scheme, url in upstream.proxies.items()} == {
        "https": "http://user:pass-secret@proxy.internal:3128",
        "http": "http://proxy.internal:3128",
    }
    assert upstream.no_proxy == "localhost,.internal"
    assert "pass-secret" not in repr(upstream)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GATEWAY_UPSTREAM_TRANSPORT": "curl"}, "GATEWAY_UPSTREAM_TRANSPORT"),
        ({"GATEWAY_UPSTREAM_MAX_CONNECTIONS": "0"}, "GATEWAY_UPSTREAM_MAX_CONNECTIONS"),
        ({"GATEWAY_UPSTREAM_MAX_CONNECTIONS": "many"}, "GATEWAY_UPSTREAM_MAX_CONNECTIONS"),
        ({"GATEWAY_UPSTREAM_TRUST_ENV": "maybe"}, "GATEWAY_UPSTREAM_TRUST_ENV"),
        ({"GATEWAY_UPSTREAM_CA_FILE": "/no/such/ca.pem"}, "GATEWAY_UPSTREAM_CA_FILE"),
        ({"GATEWAY_UPSTREAM_CA_FILE": "/"}, "GATEWAY_UPSTREAM_CA_FILE"),
        (
            {"GATEWAY_UPSTREAM_TRUST_ENV": "1", "HTTPS_PROXY": "socks5://u:pw-secret@h:1080"},
            "HTTPS_PROXY",
        ),
        (
            {"GATEWAY_UPSTREAM_TRUST_ENV": "1", "HTTP_PROXY": "http://u:pw-secret@h:port"},
            "HTTP_PROXY",
        ),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named) as raised:
        Settings.from_env(env)
    assert "secret" not in str(raised.value)


def test_a_ca_file_without_a_certificate_is_a_config_error(tmp_path: Path) -> None:
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"GATEWAY_UPSTREAM_CA_FILE: .* holds no PEM certificate"):
        Settings.from_env({"GATEWAY_UPSTREAM_CA_FILE": str(not_pem)})
    ca = tmp_path / "private-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca))
    assert Settings.from_env({"GATEWAY_UPSTREAM_CA_FILE": str(ca)}).upstream.ca_file == str(ca)
