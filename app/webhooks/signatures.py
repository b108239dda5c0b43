"""The providers' webhook signatures, computed and checked in constant time.

- **Twilio** (and **SignalWire**, which signs the same way with its space's Signing Key):
  ``X-Twilio-Signature`` = base64(HMAC-SHA1(key, url + name1 + value1 + name2 + value2 ...)),
  the URL exactly as the provider called it (query string included), then every POST
  parameter sorted by name (a name sent more than once: its distinct values sorted), as
  twilio-python's ``RequestValidator`` computes it. Twilio's back end signs a URL with or
  without its default port (``:443``/``:80``) depending on the product, so both forms are
  accepted, as its helper libraries accept them (never any other port). A JSON body is
  signed as the URL alone, which then carries ``bodySHA256`` (hex SHA-256 of the body).
- **Bird**: ``MessageBird-Signature`` = base64(HMAC-SHA256(key, timestamp + "\\n" + url +
  "\\n" + sha256(body))), the digest raw (32 bytes), the timestamp the
  ``MessageBird-Request-Timestamp`` header (Unix seconds). A timestamp more than
  ``BIRD_TOLERANCE`` seconds away from now is refused: a captured delivery cannot be replayed
  later.

No provider ships a Python verifier of its own worth a dependency (twilio-python would bring
its whole REST client for twenty lines), so these follow the providers' documented
algorithms, and the tests hold them to the providers' published examples.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qs, urlsplit

#: Seconds a Bird delivery's timestamp may be away from now.
BIRD_TOLERANCE = 300


def twilio_signature(key: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The ``X-Twilio-Signature`` of a POST of ``params`` to ``url``."""
    values: dict[str, set[str]] = {}
    for name, value in params:
        values.setdefault(name, set()).add(value)
    signed = url + "".join(
        name + value for name in sorted(values) for value in sorted(values[name])
    )
    digest = hmac.new(key.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_valid(
    key: str, url: str, params: Sequence[tuple[str, str]], signature: str, body: bytes = b""
) -> bool:
    """Whether ``signature`` is Twilio's for this delivery (``params``: the form fields, empty
    for a JSON body, whose hash the URL's ``bodySHA256`` must then name)."""
    query = parse_qs(urlsplit(url).query)
    if "bodySHA256" in query:
        claimed = query["bodySHA256"][0]
        if params or not hmac.compare_digest(hashlib.sha256(body).hexdigest(), claimed):
            return False
    given = signature.encode()
    return any(
        hmac.compare_digest(twilio_signature(key, candidate, params).encode(), given)
        for candidate in _port_forms(url)
    )


def _port_forms(url: str) -> list[str]:
    """The URL as given, and with its scheme's default port added or removed."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    if parts.port is None and default is not None:
        other = parts._replace(netloc=f"{_userinfo(parts.netloc)}{host}:{default}").geturl()
    elif parts.port == default:
        other = parts._replace(netloc=f"{_userinfo(parts.netloc)}{host}").geturl()
    else:
        return [url]
    return [url, other]


def _userinfo(netloc: str) -> str:
    user, at, _ = netloc.rpartition("@")
    return user + at


def bird_signature(key: str, timestamp: str, url: str, body: bytes) -> str:
    """The ``MessageBird-Signature`` of ``body`` posted to ``url`` at ``timestamp``."""
    signed = timestamp.encode() + b"\n" + url.encode() + b"\n" + hashlib.sha256(body).digest()
    return base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest()).decode()


def bird_valid(
    key: str,
    url: str,
    body: bytes,
    signature: str,
    timestamp: str,
    now: float,
    tolerance: int = BIRD_TOLERANCE,
) -> bool:
    """Whether ``signature`` is Bird's for this delivery, sent within ``tolerance`` seconds
    of ``now`` (Unix seconds)."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance:
        return False
    try:
        given = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = base64.b64decode(bird_signature(key, timestamp, url, body))
    return hmac.compare_digest(expected, given)
