"""Persisted queries: Apollo's Automatic Persisted Queries, or an allowlist of operations
(``app.persisted.resolve``), with the query texts in the cache backend
(``app.persisted.store``) or a manifest read at start-up (``app.persisted.manifest``)."""

from app.persisted.manifest import Manifest, load_manifest
from app.persisted.resolve import PersistedQueries

__all__ = ["Manifest", "PersistedQueries", "load_manifest"]
