"""API keys: their form, their hash, and the look-up that never says which hash matched."""

from __future__ import annotations

import base64
import hashlib

from app.access.keys import PREFIX, KeyRing, key_hash, new_key


def test_a_new_key_carries_256_random_bits_url_safe() -> None:
    key = new_key()
    assert key.startswith(PREFIX)
    raw = base64.urlsafe_b64decode(key.removeprefix(PREFIX) + "=" * 3)
    assert len(raw) >= 32
    assert len({new_key() for _ in range(100)}) == 100


def test_the_hash_is_the_hex_sha256_of_the_key() -> None:
    assert key_hash("test") == hashlib.sha256(b"test").hexdigest()


def test_the_key_ring_names_the_tenant_of_a_key() -> None:
    a, b = new_key(), new_key()
    ring = KeyRing({key_hash(a): "acme", key_hash(b): "globex"})
    assert (ring.tenant_of(a), ring.tenant_of(b), ring.tenant_of(new_key())) == (
        "acme",
        "globex",
        None,
    )
    assert ring.tenant_of(key_hash(a)) is None  # the hash is not a key
    assert not KeyRing({}) and ring
