"""Fetch GraphiQL's browser files from the npm registry into ``app/explorer/static/``.

    python -m app.explorer.vendor [--graphiql VERSION] [--react VERSION]

Without options it fetches the versions pinned now (``assets.json``) again. Run by hand to
bump a version (it needs ``npm`` on the path; the gateway never runs it):
each package is downloaded with ``npm pack``, its tarball checked against the ``sha512``
integrity the registry publishes (``npm view <package>@<version> dist.integrity``), and the
files below copied out under names that carry the version (so that browsers may cache them
for good). ``assets.json`` records, per file, where it came from and its ``sha256``;
tests/explorer checks the directory against it. Commit them together.

graphiql's UMD bundle needs only ``React`` and ``ReactDOM`` as globals: React 18's UMD
builds (React 19 ships none).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from app.explorer.assets import MANIFEST, STATIC, Asset, manifest

#: Per package: (path in its tarball, the name it is served under, with {v} its version).
FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "graphiql": (
        ("package/graphiql.min.js", "graphiql-{v}.min.js"),
        ("package/graphiql.min.css", "graphiql-{v}.min.css"),
        ("package/LICENSE", "graphiql-{v}.LICENSE"),
    ),
    "react": (
        ("package/umd/react.production.min.js", "react-{v}.production.min.js"),
        ("package/LICENSE", "react-{v}.LICENSE"),
    ),
    "react-dom": (
        ("package/umd/react-dom.production.min.js", "react-dom-{v}.production.min.js"),
        ("package/LICENSE", "react-dom-{v}.LICENSE"),
    ),
}


def main(argv: list[str] | None = None) -> int:
    pinned = {asset["package"]: asset["version"] for asset in manifest().values()}
    parser = argparse.ArgumentParser(
        prog="python -m app.explorer.vendor",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--graphiql", default=pinned["graphiql"], help="graphiql's version (3.x has a UMD build)"
    )
    parser.add_argument(
        "--react", default=pinned["react"], help="react's and react-dom's version (18.x: UMD)"
    )
    args = parser.parse_args(argv)
    versions = {"graphiql": args.graphiql, "react": args.react, "react-dom": args.react}
    files: dict[str, tuple[bytes, Asset]] = {}
    with tempfile.TemporaryDirectory() as work:
        for package, version in versions.items():
            files.update(_vendor(package, version, Path(work)))
    for old in STATIC.iterdir():
        old.unlink()
    for name, (data, _) in files.items():
        (STATIC / name).write_bytes(data)
    listed = {name: asset for name, (_, asset) in sorted(files.items())}
    MANIFEST.write_text(json.dumps(listed, indent=2) + "\n")
    print(f"{len(listed)} files in {STATIC}; manifest {MANIFEST}")
    return 0


def _vendor(package: str, version: str, work: Path) -> dict[str, tuple[bytes, Asset]]:
    spec = f"{package}@{version}"
    published = _npm("view", spec, "dist.integrity").strip()
    packed = json.loads(_npm("pack", spec, "--json", "--pack-destination", str(work)))
    tarball = work / packed[0]["filename"]
    digest = base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if f"sha512-{digest}" != published:
        raise SystemExit(f"{spec}: the tarball's sha512 is not the registry's {published}")
    out: dict[str, tuple[bytes, Asset]] = {}
    with tarfile.open(tarball) as tar:
        for member, pattern in FILES[package]:
            extracted = tar.extractfile(member)
            if extracted is None:
                raise SystemExit(f"{spec}: {member} is not a file in its tarball")
            data = extracted.read()
            out[pattern.format(v=version)] = (
                data,
                {
                    "package": package,
                    "version": version,
                    "path": member,
                    "tarball_integrity": published,
                    "sha256": hashlib.sha256(data).hexdigest(),
                },
            )
    return out


def _npm(*args: str) -> str:
    return subprocess.run(["npm", *args], check=True, capture_output=True, text=True).stdout


if __name__ == "__main__":
    sys.exit(main())
