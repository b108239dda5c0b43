"""List cursors: where each provider's listing stands, signed so that no client can forge one.

A cursor is a ``Signer`` token (purpose ``"cursor"``: URL-safe base64 of zlib-compressed
JSON, then an HMAC-SHA256 signature) of::

    {"v": 1, "f": "<filter fingerprint>",
     "p": {"twilio": [token, offset, last], "signalwire": [...], "bird": null}}

Per provider, ``[token, offset, last]`` reads: fetch the upstream page ``token`` (``null``:
the first page); everything up to and including the item with id ``last`` (or, if that
item is gone from the page, its first ``offset`` items) has been dealt with. ``null``
means that provider has nothing more. A provider missing from ``p`` starts afresh (it was
not configured when the cursor was made).

Decoding refuses, as BAD_USER_INPUT and before any upstream request, a token this
gateway did not sign, one signed for another purpose or another tenant (the tenant is part
of the signature's salt, so another tenant's cursor is simply not valid here: it does not say
whose it is), one made for another filter, and any page token the provider's adapter would
not itself have produced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.errors import BadUserInputError
from app.models import Provider
from app.providers import RecordingProvider
from app.signing import BadSignatureError, Signer

VERSION = 1
PURPOSE = "cursor"
MAX_OFFSET = 1000  # no provider pages more than this
MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class Position:
    """How far one provider's listing has been consumed (see the module docstring)."""

    token: str | None = None
    offset: int = 0
    last: str | None = None
    done: bool = False

    def to_json(self) -> list[Any] | None:
        return None if self.done else [self.token, self.offset, self.last]


START = Position()
DONE = Position(done=True)


class CursorCodec:
    """Turns positions into opaque cursors and back, for one gateway's signing keys and one
    tenant."""

    def __init__(self, signer: Signer, tenant: str) -> None:
        self._signer = signer
        self._purpose = f"{PURPOSE}/{tenant}"

    def encode(self, fingerprint: str, positions: Mapping[Provider, Position]) -> str:
        lanes = {provider.value: position.to_json() for provider, position in positions.items()}
        payload = {"v": VERSION, "f": fingerprint, "p": lanes}
        return self._signer.sign(payload, purpose=self._purpose)

    def decode(
        self, cursor: str, fingerprint: str, adapters: Mapping[Provider, RecordingProvider]
    ) -> dict[Provider, Position]:
        """The positions in ``cursor`` for the providers in ``adapters``, or BAD_USER_INPUT."""
        try:
            payload = self._signer.verify(cursor, purpose=self._purpose)
        except BadSignatureError:
            raise _invalid("it was not issued by this gateway or was altered") from None
        if payload.get("v") != VERSION or not isinstance(payload.get("p"), dict):
            raise _invalid("it is not a recordings cursor")
        if payload.get("f") != fingerprint:
            raise BadUserInputError(
                "`after` was issued for a different filter: keep the filter unchanged while "
                "paging, or start again without `after`"
            )
        lanes: dict[str, Any] = payload["p"]
        positions: dict[Provider, Position] = {}
        for provider, adapter in adapters.items():
            if provider.value in lanes:
                positions[provider] = _position(lanes[provider.value], adapter)
        return positions


def _position(value: Any, adapter: RecordingProvider) -> Position:
    if value is None:
        return DONE
    if not isinstance(value, list) or len(value) != 3:
        raise _invalid("it is malformed")
    token, offset, last = value
    if token is not None and not (isinstance(token, str) and adapter.is_page_token(token)):
        raise _invalid("it names a page the provider did not give")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise _invalid("it is malformed")
    if last is not None and not (isinstance(last, str) and 0 < len(last) <= MAX_ID_LENGTH):
        raise _invalid("it is malformed")
    return Position(token, offset, last)


def _invalid(why: str) -> BadUserInputError:
    return BadUserInputError(f"`after` is not a valid cursor: {why}")
