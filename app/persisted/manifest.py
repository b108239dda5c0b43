"""The allowlist: a manifest of the operations the gateway runs when
``GATEWAY_PERSISTED_QUERIES=allowlist``, read and checked once, at start-up.

Two formats, as the tools write them:

- Apollo's (``generate-persisted-query-manifest``) and Relay-style lists:
  ``{"format": "apollo-persisted-query-manifest", "version": 1,
  "operations": [{"id": ..., "body": ..., "name": ..., "type": ...}]}``
  (``format`` and ``version`` optional; ``name`` and ``type`` optional);
- Relay's ``persist`` output and similar maps: ``{"<id>": "<query>"}``.

An operation is found by its ``id`` or by the SHA-256 of its body (what Apollo's APQ link
sends as ``sha256Hash``), and a query text sent in full is allowed when its SHA-256 is a
body's. An id of 64 hex digits must be the SHA-256 of its body (Apollo's ids are): one that
is not is a broken manifest, since clients hashing the body would never match it. Other ids
(Relay's MD5s, names) are opaque keys. Every body must parse as GraphQL. Any problem is a
``ConfigError`` naming the file and the operation, so nothing about the manifest can fail
later, on a request.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import GraphQLError, parse

from app.errors import ConfigError

SHA256 = re.compile(r"[0-9a-f]{64}")
_TYPES = ("query", "mutation", "subscription")


def sha256_of(query: str) -> str:
    """The hash APQ names a query by: SHA-256 of its UTF-8 text, lower-case hex."""
    return hashlib.sha256(query.encode()).hexdigest()


@dataclass(frozen=True)
class Manifest:
    """The allowed operations' bodies, by id and by the SHA-256 of the body."""

    path: str
    bodies: Mapping[str, str]

    def __len__(self) -> int:
        return len(set(self.bodies.values()))

    def find(self, key: str) -> str | None:
        """The body of the operation with this id or body hash."""
        return self.bodies.get(key) or self.bodies.get(key.lower())

    def allows(self, query: str) -> bool:
        """Whether ``query`` is, character for character, one of the bodies."""
        return self.bodies.get(sha256_of(query)) == query


def load_manifest(path: str) -> Manifest:
    """Read and check the manifest at ``path`` (see the module docstring)."""
    where = f"GATEWAY_PERSISTED_QUERIES_FILE {path!r}"
    try:
        data = json.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(
            f"{where}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    except ValueError:
        raise ConfigError(f"{where}: not valid JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must be a JSON object")
    pairs = _operations(data, where) if "operations" in data else _map(data, where)
    if not pairs:
        raise ConfigError(f"{where}: holds no operations (an allowlist that allows nothing)")
    bodies: dict[str, str] = {}
    for label, op_id, body in pairs:
        _check_body(body, f"{where}: {label}")
        digest = sha256_of(body)
        if SHA256.fullmatch(op_id.lower()) and op_id.lower() != digest:
            raise ConfigError(
                f"{where}: {label} has an id of 64 hex digits that is not the SHA-256 of its "
                f"body ({digest}): clients hashing the body would not find it"
            )
        for one in {op_id, digest}:
            if bodies.setdefault(one, body) != body:
                raise ConfigError(f"{where}: {label}: id {one!r} names two different bodies")
    return Manifest(path, bodies)


def _operations(data: Mapping[str, Any], where: str) -> list[tuple[str, str, str]]:
    if data.get("version", 1) != 1:
        raise ConfigError(f"{where}: manifest version {data['version']!r} (only 1 is known)")
    operations = data["operations"]
    if not isinstance(operations, list):
        raise ConfigError(f"{where}: `operations` must be a list")
    pairs: list[tuple[str, str, str]] = []
    for index, operation in enumerate(operations):
        label = f"operations[{index}]"
        if not isinstance(operation, dict):
            raise ConfigError(f"{where}: {label} must be an object")
        op_id, body = operation.get("id"), operation.get("body")
        if not isinstance(op_id, str) or not op_id:
            raise ConfigError(f"{where}: {label} has no `id` (a string)")
        if not isinstance(body, str):
            raise ConfigError(f"{where}: {label} has no `body` (a string)")
        name, kind = operation.get("name"), operation.get("type")
        if name is not None and not isinstance(name, str):
            raise ConfigError(f"{where}: {label}: `name` must be a string")
        if kind is not None and kind not in _TYPES:
            raise ConfigError(f"{where}: {label}: `type` must be one of {', '.join(_TYPES)}")
        pairs.append((f"{label} ({name or op_id})", op_id, body))
    return pairs


def _map(data: Mapping[str, Any], where: str) -> list[tuple[str, str, str]]:
    pairs: list[tuple[str, str, str]] = []
    for op_id, body in data.items():
        if not isinstance(body, str):
            raise ConfigError(
                f"{where}: the value of {op_id!r} must be a query string (or use the "
                '{"operations": [...]} format)'
            )
        pairs.append((f"operation {op_id!r}", op_id, body))
    return pairs


def _check_body(body: str, label: str) -> None:
    if not body.strip():
        raise ConfigError(f"{label}: the body is empty")
    try:
        parse(body)
    except GraphQLError as exc:
        raise ConfigError(f"{label}: the body is not GraphQL ({exc.message})") from None
