"""API keys: made by ``recording-gateway keys new``, stored only as SHA-256 hashes.

A key is ``rgk_`` and 32 random bytes, URL-safe base64: 256 bits, so a plain SHA-256 of it
is as good as a slow password hash (nobody can guess a preimage). The config holds
``sha256:<hex>``; the gateway hashes what a client presents and looks for that hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

PREFIX = "rgk_"


def new_key() -> str:
    """A fresh API key."""
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    """The hex SHA-256 of a key: what the config stores (after ``sha256:``)."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    """Which tenant each key hash belongs to."""

    def __init__(self, owners: Mapping[str, str]) -> None:
        self._owners = [(digest.encode(), tenant) for digest, tenant in owners.items()]

    def __bool__(self) -> bool:
        return bool(self._owners)

    def tenant_of(self, key: str) -> str | None:
        """The tenant whose key this is, or None.

        Every stored hash is compared, in constant time and without stopping at a match, so
        the time taken says nothing about which hash (or how much of one) matched.
        """
        presented = key_hash(key).encode()
        found: str | None = None
        for digest, tenant in self._owners:
            if hmac.compare_digest(presented, digest):
                found = tenant
        return found
