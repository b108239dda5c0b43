"""The vendored files are exactly those ``assets.json`` lists, byte for byte, and they reach
the wheel: an installed gateway serves GraphiQL with no network."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from app.explorer.assets import MANIFEST, PAGE, STATIC, manifest
from app.explorer.vendor import FILES

ROOT = Path(__file__).resolve().parents[2]


def test_every_vendored_file_matches_its_recorded_hash() -> None:
    for name, asset in manifest().items():
        digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()
        assert digest == asset["sha256"], name


def test_nothing_unlisted_is_vendored() -> None:
    assert sorted(p.name for p in STATIC.iterdir()) == sorted(manifest())


def test_the_manifest_names_each_file_by_its_package_version_and_tarball() -> None:
    versions: dict[str, set[str]] = {}
    for name, asset in manifest().items():
        assert asset["version"] in name, name
        assert (asset["path"], name) in {
            (member, pattern.format(v=asset["version"]))
            for member, pattern in FILES[asset["package"]]
        }
        assert re.fullmatch(r"sha512-[A-Za-z0-9+/]{86}==", asset["tarball_integrity"]), name
        versions.setdefault(asset["package"], set()).add(asset["version"])
    # One version of each package, and React's two halves at the same one.
    assert {p: len(v) for p, v in versions.items()} == {"graphiql": 1, "react": 1, "react-dom": 1}
    assert versions["react"] == versions["react-dom"]


def test_the_package_build_holds_the_page_and_every_vendored_file(tmp_path: Path) -> None:
    """setuptools' ``build_py``, the step of a wheel build that gathers the package's files
    (package-data in pyproject.toml), run on a copy of the source tree."""
    source = tmp_path / "source"  # a copy: building writes *.egg-info beside it
    source.mkdir()
    for each in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / each, source)
    shutil.copytree(ROOT / "app", source / "app", ignore=shutil.ignore_patterns("__pycache__"))
    built = tmp_path / "built"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import setuptools; setuptools.setup()",
            "-q",
            "build_py",
            "-d",
            built,
        ],
        cwd=source,
        check=True,
        capture_output=True,
    )
    files = {p.relative_to(built).as_posix() for p in built.rglob("*") if p.is_file()}
    expected = {f"app/explorer/static/{name}" for name in manifest()}
    expected |= {f"app/explorer/page/{p.name}" for p in PAGE.iterdir()}
    expected |= {f"app/explorer/{MANIFEST.name}"}
    assert expected <= files, sorted(expected - files)
