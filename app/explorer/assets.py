"""GraphiQL's files, served from the gateway's own origin at ``/graphiql/{name}``.

Two kinds, both inside the package (so in the wheel; nothing is fetched at start-up):

- ``static/``: files taken unchanged from npm packages at pinned versions by
  ``python -m app.explorer.vendor``; ``assets.json`` records, for each, its package, version,
  path in the tarball, the tarball's sha512 integrity as the registry publishes it, and the
  file's sha256 (tests/explorer checks the directory against it). Their names carry the
  version, so browsers may keep them for a year without asking again.
- ``page/``: ours, the page's template (``app.explorer.page`` fills it in; not served as
  is), boot script and style (a strict Content-Security-Policy forbids inline ones).
  Browsers revalidate those two (``no-cache``): they change with the gateway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

HERE = Path(__file__).parent
STATIC = HERE / "static"
PAGE = HERE / "page"
MANIFEST = HERE / "assets.json"

#: Vendored files never change under the same (versioned) name.
IMMUTABLE = "public, max-age=31536000, immutable"
#: Ours may change with any release of the gateway: revalidated on every use.
REVALIDATE = "no-cache"

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".LICENSE": "text/plain; charset=utf-8",
}


class Asset(TypedDict):
    """One vendored file, as ``assets.json`` records it."""

    package: str
    version: str
    path: str
    tarball_integrity: str
    sha256: str


def manifest() -> dict[str, Asset]:
    """``assets.json``: each vendored file's name and origin."""
    data: dict[str, Asset] = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return data


def vendored(package: str, suffix: str) -> str:
    """The name of ``package``'s vendored file that ends with ``suffix``."""
    (name,) = (n for n, a in manifest().items() if a["package"] == package and n.endswith(suffix))
    return name


@dataclass(frozen=True)
class _File:
    path: Path
    media_type: str
    cache_control: str


class AssetsRoute:
    """``/graphiql/{name}`` as an ASGI app: only the files listed, never a path walk."""

    def __init__(self) -> None:
        files = {n: _File(STATIC / n, _media_type(n), IMMUTABLE) for n in manifest()}
        files.update(
            (p.name, _File(p, _media_type(p.name), REVALIDATE))
            for p in PAGE.iterdir()
            if p.suffix in (".js", ".css")  # not the page's template
        )
        self.files = files

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.respond(Request(scope, receive))(scope, receive, send)

    def respond(self, request: Request) -> Response:
        file = self.files.get(request.path_params["name"])
        if file is None:
            return PlainTextResponse("Not Found", status_code=404)
        headers = {"cache-control": file.cache_control, "x-content-type-options": "nosniff"}
        return FileResponse(file.path, media_type=file.media_type, headers=headers)


def _media_type(name: str) -> str:
    return _MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
