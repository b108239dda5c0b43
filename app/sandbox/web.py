"""Small HTTP helpers shared by the sandbox routes: URLs under a mount prefix, Basic auth."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import Scope

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

#: Which provider a route path belongs to, by its first segment.
PATH_PREFIXES = (
    ("/2010-04-01/", "twilio"),
    ("/api/laml/", "signalwire"),
    ("/workspaces/", "bird"),
    ("/_s3/", "s3"),
)


def route_path(scope: Scope) -> str:
    """The path below the ASGI `root_path` (the sandbox may be mounted under a prefix)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("", "/"):
        return path[len(root) :] or "/"
    return path


def provider_of(path: str) -> str | None:
    """'twilio', 'signalwire', 'bird', 's3' or None, from a route path."""
    for prefix, provider in PATH_PREFIXES:
        if path.startswith(prefix):
            return provider
    return None


@dataclass(frozen=True, slots=True)
class Urls:
    """Builds relative (`{root_path}/...`) and absolute URLs for the current request."""

    origin: str
    root: str

    @classmethod
    def of(cls, request: Request) -> Urls:
        url = request.url
        return cls(origin=f"{url.scheme}://{url.netloc}", root=request.scope.get("root_path", ""))

    def relative(self, path: str) -> str:
        return f"{self.root}{path}"

    def absolute(self, path: str) -> str:
        return f"{self.origin}{self.root}{path}"


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The (user, password) of an `Authorization: Basic` header, or None."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def is_uuid(value: str) -> bool:
    """True for the 8-4-4-4-12 hex form."""
    return UUID_RE.match(value) is not None
