"""The README stays true: its queries work against the demo, its tables are complete."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from app import errors
from app.demo import demo_settings
from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from app.webhooks import errors as webhook_errors
from tests.support import SANDBOX_URL, gateway_client, graphql

README = (Path(__file__).parent.parent / "README.md").read_text()
SETTINGS_SOURCE = (Path(__file__).parent.parent / "app" / "settings.py").read_text()

QUERIES = re.findall(r"```graphql\n(.*?)```", README, re.DOTALL)
VARIABLE = re.compile(
    r"\b(?:(?:GATEWAY|TWILIO|SIGNALWIRE|BIRD)_[A-Z0-9_]+|HTTPS?_PROXY|NO_PROXY)\b"
)


def configuration_table() -> str:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def test_the_readme_has_queries() -> None:
    assert len(QUERIES) >= 4


@pytest.mark.anyio
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.split("(")[0].split()[-1])
async def test_each_example_query_works_against_the_demo(query: str) -> None:
    sandbox = create_sandbox_app(DEMO)
    settings = demo_settings(Settings(), SANDBOX_URL, DEMO)
    async with gateway_client(settings, httpx.ASGITransport(app=sandbox)) as client:
        body = await graphql(client, query)
    assert "errors" not in body, body["errors"]
    data = body["data"]
    assert all(value for value in data.values()), data  # no null answer, no empty list
    connection = data.get("recordings")
    if connection is not None:
        assert connection["edges"], "the listing example finds demo recordings"


def test_the_configuration_table_names_every_variable_settings_reads() -> None:
    read = set(VARIABLE.findall(SETTINGS_SOURCE))
    documented = set(VARIABLE.findall(configuration_table()))
    assert read, "settings.py reads its variables by name"
    assert read - documented == set(), "variables missing from the README"
    assert documented - read == set(), "the README documents variables nobody reads"


def test_the_error_tables_name_every_code() -> None:
    codes = {
        kind.code
        for module in (errors, webhook_errors)
        for kind in vars(module).values()
        if isinstance(kind, type) and issubclass(kind, errors.GatewayError)
    }
    codes.discard(errors.GatewayError.code)  # the base class's placeholder
    section = README.split("## Errors", 1)[1].split("\n## ", 1)[0]
    assert {code for code in codes if f"`{code}`" not in section} == set()
    for code in ("INTERNAL_SERVER_ERROR", "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED"):
        assert f"`{code}`" in section


def test_the_example_config_is_a_working_config(tmp_path: Path) -> None:
    [example] = re.findall(r"```toml\n(.*?)```", README, re.DOTALL)
    path = tmp_path / "gateway.toml"
    path.write_text(example)
    secrets = set(re.findall(r'"env:([A-Z_]+)"', example))
    settings = Settings.from_env({"GATEWAY_CONFIG": str(path)} | {name: "x" for name in secrets})
    tenants = settings.tenant_settings()
    assert sorted(tenants) == ["acme", "globex"]
    assert tenants["acme"].twilio and tenants["acme"].bird and tenants["globex"].signalwire
    assert settings.jwt is not None and settings.client_auth


def test_the_readme_points_at_nothing_outside_the_repository() -> None:
    assert "shared/" not in README and "../" not in README
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if "://" not in target:
            assert (Path(__file__).parent.parent / target).exists(), target
