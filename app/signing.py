"""The one signer: everything the gateway hands out and later trusts again.

Media links and list cursors leave the gateway and come back; both are JSON
payloads signed with itsdangerous (HMAC-SHA256). ``GATEWAY_SIGNING_KEYS`` is a
list: the first key signs, every key verifies, so keys rotate without breaking
links in flight. Each use has its own salt (``purpose``), so a cursor can never
be replayed as a media token or the other way round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from itsdangerous import BadData, URLSafeSerializer


class BadSignatureError(Exception):
    """The token was not made by this gateway with any current key, or is malformed."""


class Signer:
    """Signs and verifies JSON payloads for one gateway deployment."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        # itsdangerous signs with the LAST key and verifies with all of them.
        self._keys = list(reversed(keys))

    def sign(self, payload: Mapping[str, Any], *, purpose: str) -> str:
        token: str = self._serializer(purpose).dumps(dict(payload))
        return token

    def verify(self, token: str, *, purpose: str) -> dict[str, Any]:
        """The payload, or BadSignatureError (never an itsdangerous exception)."""
        try:
            payload = self._serializer(purpose).loads(token)
        except BadData as exc:
            raise BadSignatureError(str(exc)) from None
        if not isinstance(payload, dict):
            raise BadSignatureError("payload is not an object")
        return payload

    def _serializer(self, purpose: str) -> URLSafeSerializer:
        return URLSafeSerializer(
            self._keys,
            salt=f"recording-gateway/{purpose}",
            signer_kwargs={"digest_method": hashlib.sha256},
        )
