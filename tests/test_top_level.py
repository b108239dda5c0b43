"""The repository's top level holds what the product card allows, and nothing else: the
project file, the README, the package, the exported schema, the tests, the Dockerfile, and
dot-folders (``.ci/``). A stray file there (a profiler's output, once) fails here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {"pyproject.toml", "README.md", "app", "schema.graphql", "tests", "Dockerfile"}


def test_the_top_level_holds_only_what_the_product_card_allows() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    top = {path.split("/", 1)[0] for path in tracked}
    assert {name for name in top if not name.startswith(".")} <= ALLOWED, top
