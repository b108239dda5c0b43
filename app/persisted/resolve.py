"""From a request's ``query`` and ``extensions.persistedQuery`` to the query text to run, by
Apollo's Automatic Persisted Queries protocol, or refused; run by the gate, before GraphQL
parses anything and without any upstream request.

``GATEWAY_PERSISTED_QUERIES`` picks the mode:

- ``apq`` (default): ``{"version": 1, "sha256Hash": <64 hex>}`` alone runs the query stored
  under that hash, or is ``PERSISTED_QUERY_NOT_FOUND`` (HTTP 200); with the query too, the
  hash must be its SHA-256 (else ``BAD_USER_INPUT``) and the query is stored, then run.
- ``allowlist``: only the manifest's operations run, named by hash (or manifest id) or sent
  in full; anything else is ``PERSISTED_QUERY_NOT_ALLOWED``. Nothing is stored.
- ``off``: the extension is ignored beside a query; alone it is
  ``PERSISTED_QUERY_NOT_SUPPORTED``.

An unknown ``version`` or a malformed extension is ``BAD_USER_INPUT`` (but with ``off``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import (
    ConfigError,
    PersistedQueryInvalidError,
    PersistedQueryNotAllowedError,
    PersistedQueryNotFoundError,
    PersistedQueryNotSupportedError,
)
from app.persisted.manifest import SHA256, Manifest, load_manifest, sha256_of
from app.persisted.store import QueryStore, build_store, key
from app.settings import Settings

logger = logging.getLogger("app.persisted")

VERSION = 1


@dataclass(frozen=True)
class PersistedQueries:
    """The mode, and the store (``apq``) or the manifest (``allowlist``) it needs."""

    mode: str
    store: QueryStore | None = None
    manifest: Manifest | None = None
    #: The longest text stored or read back (``GATEWAY_MAX_BODY_BYTES``: no longer query
    #: can arrive by POST, and a GET's must not fill the store with more).
    max_bytes: int = 65536

    @staticmethod
    def manifest_for(settings: Settings) -> Manifest | None:
        """The allowlist's manifest, read at start-up (ConfigError if it is not usable)."""
        if settings.persisted_queries != "allowlist":
            return None
        if settings.persisted_queries_file is None:  # Settings.from_env refuses this too
            raise ConfigError("GATEWAY_PERSISTED_QUERIES=allowlist needs a manifest file")
        return load_manifest(settings.persisted_queries_file)

    @classmethod
    def build(cls, settings: Settings, manifest: Manifest | None) -> PersistedQueries:
        store = build_store(settings.cache) if settings.persisted_queries == "apq" else None
        return cls(settings.persisted_queries, store, manifest, settings.limits.max_body_bytes)

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()

    async def resolve(self, request: Mapping[str, Any], tenant: str) -> str | None:
        """The query to run for ``request`` (a checked body or GET parameters) of
        ``tenant``: its own, or the one its hash names; ``None`` when it has neither."""
        query: str | None = request.get("query") or None
        if self.mode == "off":
            if query is None and "persistedQuery" in (request.get("extensions") or {}):
                raise PersistedQueryNotSupportedError()
            return query
        wanted = _hash(request)
        if self.mode == "allowlist":
            return self._allowed(query, wanted)
        if wanted is None:
            return query
        if not SHA256.fullmatch(wanted):
            raise PersistedQueryInvalidError("persistedQuery.sha256Hash must be 64 hex digits")
        assert self.store is not None
        name = key(tenant, wanted)
        if query is not None:
            if sha256_of(query) != wanted:
                raise PersistedQueryInvalidError("provided sha does not match query")
            if len(query.encode()) <= self.max_bytes:
                await self.store.put(name, query)
            return query
        stored = await self.store.get(name)
        if stored is None or len(stored.encode()) > self.max_bytes:
            raise PersistedQueryNotFoundError()
        if sha256_of(stored) != wanted:  # a shared store's entry is checked, not trusted
            logger.warning("ignoring a persisted query whose text does not match its hash")
            raise PersistedQueryNotFoundError()
        return stored

    def _allowed(self, query: str | None, wanted: str | None) -> str | None:
        assert self.manifest is not None
        if wanted is None:
            if query is None:
                return None
            if not self.manifest.allows(query):
                raise PersistedQueryNotAllowedError(
                    "this query is not in the gateway's allowlist of operations"
                )
            return query
        body = self.manifest.find(wanted)
        if body is None:
            raise PersistedQueryNotAllowedError(
                "no operation with this hash is in the gateway's allowlist"
            )
        if query is not None and query != body:
            raise PersistedQueryInvalidError("provided sha does not match query")
        return body


def _hash(request: Mapping[str, Any]) -> str | None:
    """``extensions.persistedQuery.sha256Hash`` (lower case), checked; ``None`` without
    the extension."""
    extensions = request.get("extensions") or {}
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise PersistedQueryInvalidError("extensions.persistedQuery must be an object")
    if persisted.get("version") != VERSION:
        raise PersistedQueryInvalidError(
            f"persistedQuery.version {persisted.get('version')!r} is not supported: send 1"
        )
    wanted = persisted.get("sha256Hash")
    if not isinstance(wanted, str) or not wanted:
        raise PersistedQueryInvalidError("persistedQuery.sha256Hash must be a string")
    return wanted.lower()
