"""HTTP caching of ``GET /graphql`` answers: ``Cache-Control``, a strong ``ETag``, and 304.

An answer is only as fresh as the least fresh thing in it, so each request carries a
``Freshness`` that what it serves reports to:

- every recording (the loaders, from the cache's ``Fresh``): fresh until its cache entry
  expires (a recording fetched just now: its TTL). One in an active state (queued, in
  progress) is changing: the answer is ``no-store``. So is one served stale (past its TTL,
  the provider failing): it stands in for an error, and like an error it must not outlive
  the outage in a client's cache (``max-age=0`` would still let it be stored and come
  back as a 304 on revalidation; ``no-store`` is also the one uncacheable form here);
- every media link minted (``Recording.media``/``mediaUrl``): a cached answer must not hold
  a link that no longer works, so ``max-age`` never passes the earliest link's expiry;
- ``recordingStats``: a closed period's, kept by the gateway (``app.stats``), until its entry
  expires; any other: ``no-store``, as a listing.
- a ``recordings`` listing: ``no-store``. A page reflects what the providers list right now
  (a recording added upstream changes it at any time, and nothing the gateway holds says
  when), so no TTL would be honest;
- any error in the answer (a failed ref, NOT_FOUND, a provider down): ``no-store``.

The same bookkeeping decides what the gateway's own response cache may keep
(``app.responses``): an answer there is shared by every caller with the same tenant, scopes
and request, so it must hold nothing minted for one request (a media link), and it lives only
until its earliest recording expires (``shared_until``), tagged with those recordings' keys
(``tags``). An active recording does not keep it out: the gateway answers with the same
cached recording until then anyway; but errors, stale recordings and listings do.

An answer nothing bounded (e.g. ``{ __typename }``) is ``no-store`` too: never cached on
a guess. A cacheable answer is ``private, max-age=N`` (the tenant's data: never in a shared
cache) with ``Vary: Authorization`` (one browser may switch keys) and
``ETag: "<sha256 of the body, 32 hex>"``. ``If-None-Match`` naming it (RFC 9110 §13.1.2:
a list, ``*``, weak comparison) answers 304 with no body. The body is built first, from
the cache, so a 304 costs no upstream request while the entries last. POST answers are
always ``no-store``: HTTP caches key on the URL, and a POST's query is in its body.
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Callable
from datetime import datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.cache import Fresh, FreshTranscriptions

NO_STORE = "no-store"

# One entity-tag of an If-None-Match list (RFC 9110 §8.8.3): optional W/, quoted opaque-tag.
_ENTITY_TAG = re.compile(r'\s*(?:W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')


class Freshness:
    """How long one request's answer may be reused: the earliest expiry of what it holds,
    or never (``no_store``). Built per request, in the GraphQL context."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._until: float | None = None
        self.no_store_reason: str | None = None
        #: Why the gateway's response cache must not keep the answer (None: it may).
        self.unshared_reason: str | None = None
        #: The cache keys of the recordings in the answer.
        self.tags: set[str] = set()

    @classmethod
    def restored(
        cls, until: float, no_store_reason: str | None, clock: Callable[[], float] = time.time
    ) -> Freshness:
        """The freshness of an answer kept by the response cache, as it was when stored."""
        freshness = cls(clock)
        freshness._until = until
        freshness.no_store_reason = no_store_reason
        return freshness

    def recording(self, fresh: Fresh) -> None:
        """A recording in the answer, as the cache gave it."""
        if fresh.stale:
            self.no_store("a stale recording")
        if not fresh.recording.status.is_terminal and self.no_store_reason is None:
            self.no_store_reason = "an active recording"  # for clients; the gateway may keep it
        self._bound(fresh.expires)
        if fresh.key:
            self.tags.add(fresh.key)

    def transcriptions(self, fresh: FreshTranscriptions) -> None:
        """A recording's transcriptions in the answer: like a recording, one still running
        makes it ``no-store`` for clients, and the answer is tagged with their key."""
        if not fresh.settled and self.no_store_reason is None:
            self.no_store_reason = "an active transcription"
        self._bound(fresh.expires)
        if fresh.key:
            self.tags.add(fresh.key)

    def kept(self, until: float, key: str) -> None:
        """Something in the answer the gateway keeps unchanged until ``until`` under the cache
        key ``key`` (a closed period's stats, ``app.stats``): the answer may be reused until
        then, and shared by the response cache."""
        self._bound(until)
        self.tags.add(key)

    def link(self, expires_at: datetime) -> None:
        """A media link in the answer: minted for this request, never shared."""
        self._bound(expires_at.timestamp())
        if self.unshared_reason is None:
            self.unshared_reason = "a media link"

    def no_store(self, reason: str) -> None:
        """The answer must not be reused at all (the first reason is kept, for tests/logs)."""
        if self.no_store_reason is None:
            self.no_store_reason = reason
        if self.unshared_reason is None:
            self.unshared_reason = reason

    def shared_until(self) -> float | None:
        """Until when (unix seconds) the response cache may keep the answer; None: not at all."""
        if self.unshared_reason is not None or not self.tags:
            return None
        return self._until

    def max_age(self) -> int:
        """Whole seconds the answer stays fresh; 0 means ``no-store``."""
        if self.no_store_reason is not None or self._until is None:
            return 0
        return max(math.floor(self._until - self._clock()), 0)

    def _bound(self, until: float) -> None:
        self._until = until if self._until is None else min(self._until, until)


def strong_etag(body: bytes | memoryview) -> str:
    """A strong validator: the same bytes, the same tag."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def none_match(header: str | None, etag: str) -> bool:
    """Whether ``If-None-Match: header`` names ``etag`` (weak comparison), i.e. the client
    already holds this answer. A malformed header matches nothing."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    position, tags = 0, []
    while position < len(header):
        found = _ENTITY_TAG.match(header, position)
        if found is None:
            return False
        tags.append(found.group(1))
        position = found.end()
    return etag.strip('"') in tags


def apply(request: Request, response: Response, freshness: Freshness) -> Response:
    """The response to send: ``response`` with its caching headers, or a 304 in its place."""
    max_age = freshness.max_age()
    cacheable = request.method == "GET" and response.status_code == 200
    if not cacheable or max_age <= 0 or isinstance(response, StreamingResponse):
        response.headers["cache-control"] = NO_STORE
        return response
    etag = strong_etag(response.body)
    if none_match(request.headers.get("if-none-match"), etag):
        # RFC 9110 §15.4.5: a 304 carries the validators and caching headers a 200 would.
        response = Response(status_code=304)
    response.headers["cache-control"] = f"private, max-age={max_age}"
    response.headers["etag"] = etag
    response.headers.add_vary_header("Authorization")
    return response
