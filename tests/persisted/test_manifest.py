"""The allowlist manifest: both formats load, and every problem is a ConfigError at start-up
naming the file and the operation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.errors import ConfigError
from app.main import create_app
from app.persisted import load_manifest
from app.sandbox import SandboxConfig
from app.settings import Settings
from tests.support import SIGNING_KEY, sandbox_env

ROOT = Path(__file__).resolve().parents[2]

ONE = "query One { __typename }"
TWO = "query Two($id: ID!) { recording(provider: TWILIO, id: $id) { id } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write(path: Path, data: Any) -> str:
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def apollo(*bodies: str) -> dict[str, Any]:
    """What Apollo's generate-persisted-query-manifest writes."""
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha(body), "body": body, "name": body.split()[1].split("(")[0], "type": "query"}
            for body in bodies
        ],
    }


def test_apollos_format_finds_operations_by_id_and_allows_their_text(tmp_path: Path) -> None:
    manifest = load_manifest(write(tmp_path / "m.json", apollo(ONE, TWO)))
    assert len(manifest) == 2
    assert manifest.find(sha(ONE)) == ONE and manifest.find(sha(TWO).upper()) == TWO
    assert manifest.allows(TWO) and not manifest.allows(TWO + " ")
    assert manifest.find(sha("{ __typename }")) is None


def test_relays_map_with_opaque_ids_is_found_by_id_and_by_the_bodys_hash(tmp_path: Path) -> None:
    md5 = hashlib.md5(ONE.encode()).hexdigest()
    manifest = load_manifest(write(tmp_path / "m.json", {md5: ONE, "TwoQuery": TWO}))
    assert manifest.find(md5) == ONE and manifest.find(sha(ONE)) == ONE
    assert manifest.find("TwoQuery") == TWO and manifest.find(sha(TWO)) == TWO
    assert manifest.allows(ONE) and manifest.allows(TWO)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ({}, "holds no operations"),
        ({"operations": []}, "holds no operations"),
        ({"operations": {}}, "`operations` must be a list"),
        ({"operations": ["x"]}, "operations[0] must be an object"),
        ({"operations": [{"body": ONE}]}, "operations[0] has no `id`"),
        ({"operations": [{"id": "x"}]}, "operations[0] has no `body`"),
        ({"operations": [{"id": "x", "body": ONE, "type": "thing"}]}, "`type` must be one of"),
        ({"operations": [{"id": "x", "body": ONE, "name": 3}]}, "`name` must be a string"),
        ({"version": 2, "operations": [{"id": "x", "body": ONE}]}, "manifest version 2"),
        ({"x": 1}, "the value of 'x' must be a query string"),
        ({"x": "  "}, "operation 'x': the body is empty"),
        ({"x": "query {"}, "operation 'x': the body is not GraphQL"),
        ({sha(TWO): ONE}, "is not the SHA-256 of its body"),
        (
            {"operations": [{"id": "a", "body": ONE}, {"id": "a", "body": TWO}]},
            "id 'a' names two different bodies",
        ),
    ],
)
def test_a_broken_manifest_is_a_config_error_naming_file_and_problem(
    tmp_path: Path, content: Any, problem: str
) -> None:
    path = write(tmp_path / "manifest.json", content)
    with pytest.raises(ConfigError) as raised:
        load_manifest(path)
    assert f"GATEWAY_PERSISTED_QUERIES_FILE {path!r}" in raised.value.message
    assert problem in raised.value.message


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match="cannot read it"):
        load_manifest(path)


def test_the_gateway_refuses_to_build_with_a_broken_manifest(tmp_path: Path) -> None:
    path = write(tmp_path / "manifest.json", {"operations": []})
    env = sandbox_env(SandboxConfig()) | {
        "GATEWAY_PERSISTED_QUERIES": "allowlist",
        "GATEWAY_PERSISTED_QUERIES_FILE": path,
    }
    with pytest.raises(ConfigError, match="holds no operations"):
        create_app(Settings.from_env(env))


@pytest.mark.parametrize("demo", [False, True], ids=["providers", "demo"])
def test_serve_stops_with_the_manifests_problem_and_no_traceback(
    tmp_path: Path, demo: bool
) -> None:
    path = write(tmp_path / "manifest.json", {"x": "query {"})
    own = ("GATEWAY_", "TWILIO_", "SIGNALWIRE_", "BIRD_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)} | {
        **sandbox_env(SandboxConfig(), "http://127.0.0.1:9"),
        "GATEWAY_SIGNING_KEYS": SIGNING_KEY,
        "GATEWAY_PERSISTED_QUERIES": "allowlist",
        "GATEWAY_PERSISTED_QUERIES_FILE": path,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "app", "serve", "--port", "0", *(["--demo"] * demo)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "configuration error: GATEWAY_PERSISTED_QUERIES_FILE" in done.stderr
    assert "the body is not GraphQL" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
