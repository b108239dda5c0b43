"""The plumbing every HTTP adapter shares, and the one place upstream failures are translated.

What an adapter offers is ``app.providers.protocol.RecordingProvider``; ``HttpProvider``
implements it over HTTP and leaves each vendor its abstract hooks (``recording_url``,
``to_recording``, ``media_url``, plus ``account_id``, ``list_page`` and ``is_page_token``).
Adapters get the gateway's shared ``Upstream`` and plain values (URLs, ids, an
``httpx.Auth``); they never create clients, read the environment or see a settings type
(the registry in ``app.providers`` builds them). ``HttpProvider.send`` is the single choke
point where transport errors, HTTP statuses and vendor error bodies become ``app.errors``
exceptions (``_transport_error`` and ``_status_error``, which ``get_json``'s lean path calls
too); it also follows redirects by hand for media downloads, each hop checked by
the account's ``RedirectPolicy`` (``app.providers.redirects``). Metadata answers are checked
too: no redirect, no body over ``max_body_bytes`` (refused from Content-Length before
reading, else counted while reading), and the recording asked for, not another one.

``get_json`` (a recording, a listing page) is the hot path: a ``recordingsByRef`` makes up to
100 of them in a row on one event loop. It goes through ``Upstream.open`` with a URL string
and the headers computed once per adapter (the defaults and the account's credentials), and
builds no ``httpx`` model over the default aiohttp transport (``app.upstream.client``).

Every call goes through the account's ``CallGuard`` (``app.resilience``): a metadata GET read to
its last byte, a listing page, a media download up to its headers, a deletion are each one
guarded call, bounded by one deadline, retried when ``send`` marked the failure ``transient``.
A media body is never retried: once its first byte went to the client, a failure ends the
download. A deletion's retry that finds the recording gone after an attempt that may have
deleted it is a deletion, not an error (``HttpProvider.delete``).
"""

from __future__ import annotations

import json
import logging
import re
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx
from prometheus_client import Counter

from app import metrics
from app.errors import (
    BadUserInputError,
    MalformedProviderResponseError,
    MediaDirectUnavailableError,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailableError,
    RangeNotSatisfiableError,
    RateLimitedError,
    RecordingNotFoundError,
)
from app.models import MediaFormat, Provider, Recording
from app.providers.protocol import ProviderLink, RecordingProvider
from app.providers.redirects import MAX_HOPS, RedirectPolicy, RedirectRefused
from app.resilience import CallGuard, Resilience
from app.upstream.client import BodyTooLarge, Upstream, credentials, read_bounded

UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

_UNSATISFIED = re.compile(r"^bytes \*/(\d+)$")

log = logging.getLogger(__name__)

#: Redirects a media download may take (Bird's 307 to S3, a Twilio CDN hop).
MEDIA_REDIRECTS = MAX_HOPS
#: The largest JSON body read from a provider (``GATEWAY_UPSTREAM_MAX_BODY_BYTES``).
MAX_BODY_BYTES = 2 * 2**20
#: The message of a 401/403 on a hop that carried no credentials (a presigned link).
LINK_REFUSED = "the provider's media link was refused"
#: 5xx statuses worth a retry: a proxy or a load balancer in front of the provider failed
#: (502, 504) or the provider is shedding load (503). A 500 is the provider's bug.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
#: Request headers a redirect hop carries over (never Authorization or cookies).
_HOP_HEADERS = ("accept", "accept-encoding", "range")


class HttpProvider(RecordingProvider):
    """Shared plumbing for adapters: id checks, sending, and error translation."""

    provider: ClassVar[Provider]
    #: A recording id must match it whole (``fullmatch``: a trailing newline is no id).
    id_pattern: ClassVar[re.Pattern[str]]
    id_description: ClassVar[str]
    media_formats: ClassVar[tuple[MediaFormat, ...]] = ()
    #: Whether a redirect back to the API's own origin keeps the credentials (never elsewhere).
    redirect_credentials: ClassVar[bool] = True

    def __init__(
        self,
        upstream: Upstream,
        auth: httpx.Auth,
        endpoint: str,
        *,
        redirect_hosts: tuple[str, ...] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
        guard: CallGuard | None = None,
    ) -> None:
        self._upstream = upstream
        self._auth = auth
        self.endpoint = endpoint
        self.redirects = RedirectPolicy.build(self.provider, endpoint, redirect_hosts)
        self.max_body_bytes = max_body_bytes
        self.guard = guard or CallGuard(
            self.provider, self.label, Resilience(timeout=upstream.timeout)
        )
        self._exchanges = {
            outcome: metrics.UPSTREAM_REQUESTS.labels(self.provider.name, outcome, "")
            for outcome in ("timeout", "network")
        }
        #: ``get_json``'s request headers: the defaults and the credentials, computed once.
        self._get_headers = upstream.headers(credentials(auth))
        self._answers: dict[int, Counter] = {}  # the UPSTREAM_REQUESTS child of each status

    @property
    def endpoint_account(self) -> str:
        return f"{self.endpoint}|{self.account_id}"

    @abstractmethod
    def recording_url(self, recording_id: str) -> str:
        """The URL of the recording's metadata."""

    @abstractmethod
    def to_recording(self, payload: Mapping[str, Any]) -> Recording:
        """Read the vendor's JSON; raise KeyError/TypeError/ValueError if it is not a recording."""

    @abstractmethod
    def media_url(self, recording_id: str, fmt: MediaFormat) -> str:
        """The URL the provider serves the media at (with the gateway's credentials)."""

    def media_request(
        self, recording_id: str, fmt: MediaFormat, range_header: str | None = None
    ) -> httpx.Request:
        """GET of the media. Always GET, also for a client's HEAD: presigned links are
        signed for one method. ``identity`` keeps bytes and ranges those of the file."""
        if fmt not in self.media_formats:
            raise BadUserInputError(
                f"{self.label} does not serve {fmt.name} media", provider=self.provider
            )
        headers = {"Accept-Encoding": "identity"}
        if range_header:
            headers["Range"] = range_header
        return self._upstream.request("GET", self.media_url(recording_id, fmt), headers=headers)

    async def open_media(
        self, recording_id: str, fmt: MediaFormat, range_header: str | None = None
    ) -> httpx.Response:
        request = self.media_request(recording_id, fmt, range_header)
        what = f"media for recording {recording_id!r}"
        return await self.guard.call(
            lambda: self.send(request, what=what, stream=True, max_redirects=MEDIA_REDIRECTS),
            status_of=_status,
        )

    async def direct_link(
        self, recording_id: str, fmt: MediaFormat, expires_at: datetime
    ) -> ProviderLink:
        raise MediaDirectUnavailableError(
            f"{self.label} has no media link that works without the gateway's credentials; "
            "use delivery: PROXY",
            provider=self.provider,
        )

    async def fetch(self, recording_id: str) -> Recording:
        payload = await self.get_json(
            self.recording_url(recording_id), what=f"recording {recording_id!r}"
        )
        recording = self.parse(payload)
        if recording.id.lower() != recording_id.lower():  # ids are case-insensitive hex
            raise self.malformed(f"recording {recording.id!r} when asked for {recording_id!r}")
        return recording

    async def delete(self, recording_id: str) -> bool:
        """``DELETE`` of the recording's metadata URL (Twilio, SignalWire: ``….json``; Bird:
        the recording): 2xx is deleted now, 404 gone already (see ``RecordingProvider``).

        One guarded call: a DELETE is idempotent, so it is retried on transient failures like
        a GET. What a retry must not do is turn a success into an error: when an attempt
        failed after the request may have reached the provider (a timeout, a reset, a 502/504
        from a proxy whose origin acted) and a later attempt answers 404, that attempt's
        predecessor deleted it: the answer is "deleted", not "gone already" nor NOT_FOUND.
        A failure before anything was sent (no connection) or a refusal (429) did nothing.
        """
        request = self._upstream.request("DELETE", self.recording_url(recording_id))
        what = f"recording {recording_id!r}"
        reached = False  # an earlier attempt may have deleted it, its answer lost

        async def attempt() -> tuple[int, bool]:
            nonlocal reached
            try:
                response = await self.send(request, what=what)
            except RecordingNotFoundError:
                return 404, reached
            except ProviderError as exc:
                reached = reached or may_have_acted(exc)
                raise
            if not 200 <= response.status_code < 300:
                raise self.malformed(f"HTTP {response.status_code} to the deletion of {what}")
            return response.status_code, True

        _, deleted = await self.guard.call(
            attempt, status_of=lambda answer: answer[0], method="DELETE"
        )
        return deleted

    def parse(self, payload: Mapping[str, Any]) -> Recording:
        """The recording in ``payload``, or PROVIDER_BAD_RESPONSE if it is not one."""
        try:
            return self.to_recording(payload)
        except (KeyError, TypeError, ValueError) as exc:
            raise self.malformed(f"a recording it could not read ({exc})") from exc

    @classmethod
    def check_id(cls, recording_id: str) -> None:
        if not cls.id_pattern.fullmatch(recording_id):
            raise BadUserInputError(
                f"{recording_id[:64]!r} is not a {cls.label} recording id "
                f"(expected {cls.id_description})",
                provider=cls.provider,
            )

    def parse_error_body(self, body: Any) -> str | None:
        """The vendor's own error code from an error body, if it has one."""
        if isinstance(body, Mapping) and isinstance(body.get("code"), str | int):
            return str(body["code"])
        return None

    async def send(
        self,
        request: httpx.Request,
        *,
        what: str = "such resource",
        stream: bool = False,
        authenticate: bool = True,
        max_redirects: int = 0,
    ) -> httpx.Response:
        """Send ``request``; return a 2xx/3xx response or raise the matching GatewayError.

        ``what`` names the resource for a NOT_FOUND message ("recording 'RE…'").
        ``authenticate=False`` sends no credentials (e.g. to a presigned link's host).
        ``max_redirects`` > 0 follows that many redirects by hand, each hop allowed by
        ``self.redirects`` and never back to a URL already visited, with credentials only
        back to the first request's origin (and only when the adapter's
        ``redirect_credentials`` says so); a redirect refused or beyond them is
        PROVIDER_BAD_RESPONSE. A 401/403 on a hop without credentials is the media link's
        refusal (PROVIDER_BAD_RESPONSE), not the gateway's credentials'.
        """
        origin = _origin(request.url)
        credentials = authenticate
        visited = {str(request.url)}
        for hop in range(max_redirects + 1):
            response = await self._exchange(request, credentials=credentials, stream=stream)
            if response.status_code >= 400:
                try:
                    body = response.content if not stream else await self._error_body(response)
                except httpx.TransportError as exc:  # the error's body broke off
                    raise self._transport_error(exc, "broke off its answer") from exc
                if hop > 0 and not credentials and response.status_code in (401, 403):
                    raise MalformedProviderResponseError(LINK_REFUSED, provider=self.provider)
                raise self._status_error(response.status_code, response.headers, what, body)
            if not max_redirects or not 300 <= response.status_code < 400:
                return response
            await response.aclose()
            if hop == max_redirects:
                break
            request = self.next_hop(request, response)
            await self._check_hop(request.url, visited)
            same_origin = _origin(request.url) == origin
            credentials = authenticate and self.redirect_credentials and same_origin
        raise self.malformed(f"more than {max_redirects} redirects")

    async def _check_hop(self, url: httpx.URL, visited: set[str]) -> None:
        """PROVIDER_BAD_RESPONSE unless the policy allows a hop to ``url`` (logged by host:
        never the query, a presigned link's signature is in it)."""
        if str(url) in visited:
            log.warning("%s: refused a media redirect loop back to host %r", self.label, url.host)
            raise self.malformed("a redirect loop")
        visited.add(str(url))
        try:
            await self.redirects.check(url, self._upstream.transport)
        except RedirectRefused as exc:
            log.warning("%s: refused %s", self.label, exc)
            raise self.malformed(str(exc)) from None

    async def _exchange(
        self, request: httpx.Request, *, credentials: bool, stream: bool
    ) -> httpx.Response:
        auth = self._auth if credentials else None
        try:
            response = await self._upstream.transmit(request, auth=auth, stream=stream)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, "could not be reached") from exc
        self._count(response.status_code)
        return response

    def _count(self, status: int) -> None:
        """One answer in ``UPSTREAM_REQUESTS``, by status (its child looked up once)."""
        counter = self._answers.get(status)
        if counter is None:
            outcome = "ok" if status < 400 else "error"
            counter = metrics.UPSTREAM_REQUESTS.labels(self.provider.name, outcome, str(status))
            self._answers[status] = counter
        counter.inc()

    def _transport_error(self, exc: httpx.TransportError, what: str) -> ProviderUnavailableError:
        """PROVIDER_UNAVAILABLE for a timeout or a connection failure (retried: transient)."""
        if isinstance(exc, httpx.TimeoutException):
            self._exchanges["timeout"].inc()
            message = f"{self.label} did not answer in time"
            return ProviderUnavailableError(message, provider=self.provider, transient="timeout")
        self._exchanges["network"].inc()
        message = f"{self.label} {what} ({type(exc).__name__})"
        return ProviderUnavailableError(message, provider=self.provider, transient="network")

    def next_hop(self, request: httpx.Request, response: httpx.Response) -> httpx.Request:
        """The next hop of a redirect: same method, only the ``_HOP_HEADERS``."""
        status = response.status_code
        location = response.headers.get("location")
        if not location:
            raise self.malformed(f"a redirect (HTTP {status}) without a Location")
        try:
            url = request.url.join(location)
        except httpx.InvalidURL as exc:
            raise self.malformed(f"a redirect (HTTP {status}) to an invalid URL") from exc
        if url.scheme not in ("http", "https"):
            raise self.malformed(f"a redirect (HTTP {status}) to a non-HTTP URL")
        headers = {name: request.headers[name] for name in _HOP_HEADERS if name in request.headers}
        return self._upstream.request(request.method, url, headers=headers)

    async def get_json(
        self,
        url: str,
        *,
        what: str = "such resource",
        params: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
        """GET ``url`` (``params`` form-encoded into its query, as httpx encodes them) and
        return its JSON object: not a redirect, at most ``max_body_bytes``; one guarded
        call, its body read within the deadline."""
        if params:
            url = f"{url}?{urlencode(params)}"
        _, body = await self.guard.call(lambda: self._get_answer(url, what), status_of=_first)
        return self._json_object(body)

    async def _get_answer(self, url: str, what: str) -> tuple[int, bytes]:
        """One exchange of ``get_json``: the same checks and errors as ``send`` and
        ``_read_answer`` give a streamed ``httpx.Response``, through ``Upstream.open``."""
        try:
            answer = await self._upstream.open("GET", url, self._get_headers)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, "could not be reached") from exc
        try:
            status = answer.status
            self._count(status)
            if status >= 400:
                try:
                    body = await read_bounded(answer.headers, answer.chunks(), self.max_body_bytes)
                except BodyTooLarge:
                    body = b""  # no vendor code then, as ``_error_body``
                raise self._status_error(status, answer.headers, what, body)
            if status >= 300:
                raise self.malformed(f"a redirect (HTTP {status}) for {what}")
            return status, await self._bounded(answer.headers, answer.chunks())
        except httpx.TransportError as exc:  # cut, reset or stalled in the body
            raise self._transport_error(exc, "broke off its answer") from exc
        finally:
            await answer.aclose()

    async def _bounded(self, headers: Mapping[str, str], chunks: AsyncIterator[bytes]) -> bytes:
        """The body, or PROVIDER_BAD_RESPONSE as soon as it is known to exceed the cap."""
        try:
            return await read_bounded(headers, chunks, self.max_body_bytes)
        except BodyTooLarge as exc:
            raise self.malformed(str(exc)) from None

    async def _bounded_body(self, response: httpx.Response) -> bytes:
        """``_bounded`` of a streamed ``httpx.Response``."""
        return await self._bounded(response.headers, response.aiter_bytes())

    async def post_json(
        self, url: str, payload: Mapping[str, Any], *, what: str = "such resource"
    ) -> Mapping[str, Any]:
        """POST ``payload`` as JSON and return the JSON object answered; one guarded call,
        retried only after a 429 (the provider did not act on it): a POST that may have
        reached the provider (a timeout, a reset, a 5xx) is never sent twice."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        request = self._upstream.request("POST", url, headers=headers, content=body)

        async def attempt() -> tuple[int, bytes]:
            try:
                return await self._read_answer(request, what)
            except ProviderError as exc:
                if exc.transient != "429":
                    exc.transient = None
                raise

        _, answer = await self.guard.call(attempt, status_of=lambda answer: answer[0])
        return self._json_object(answer)

    async def get_text(self, url: str, *, what: str = "such resource") -> str:
        """GET ``url`` as UTF-8 text (at most ``max_body_bytes``), following redirects as
        media downloads do (``send``'s ``max_redirects``); one guarded call."""
        request = self._upstream.request("GET", url, headers={"Accept": "text/plain"})

        async def attempt() -> tuple[int, bytes]:
            response = await self.send(
                request, what=what, stream=True, max_redirects=MEDIA_REDIRECTS
            )
            try:
                return response.status_code, await self._bounded_body(response)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, "broke off its answer") from exc
            finally:
                await response.aclose()

        _, body = await self.guard.call(attempt, status_of=lambda answer: answer[0])
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.malformed(f"{what} that is not UTF-8 text") from exc

    async def _read_answer(self, request: httpx.Request, what: str) -> tuple[int, bytes]:
        """One exchange of a JSON call: not a redirect, its body within the cap."""
        response = await self.send(request, what=what, stream=True)
        try:
            if 300 <= response.status_code < 400:
                raise self.malformed(f"a redirect (HTTP {response.status_code}) for {what}")
            return response.status_code, await self._bounded_body(response)
        except httpx.TransportError as exc:  # cut, reset or stalled in the body
            raise self._transport_error(exc, "broke off its answer") from exc
        finally:
            await response.aclose()

    def _json_object(self, body: bytes) -> Mapping[str, Any]:
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise self.malformed("a body that is not JSON") from exc
        if not isinstance(payload, Mapping):
            raise self.malformed("JSON that is not an object")
        return payload

    def page_items(self, payload: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
        """The objects of a list envelope's ``key`` array, or PROVIDER_BAD_RESPONSE."""
        items = payload.get(key)
        if not isinstance(items, list):
            raise self.malformed(f"a recording list without a '{key}' array")
        if not all(isinstance(item, Mapping) for item in items):
            raise self.malformed("a recording list with an item that is not an object")
        return items

    def malformed(self, what: str) -> MalformedProviderResponseError:
        return MalformedProviderResponseError(
            f"{self.label} answered {what}", provider=self.provider
        )

    async def _error_body(self, response: httpx.Response) -> bytes:
        """A streamed error answer's body, if within the cap (else none: no vendor code)."""
        try:
            return await self._bounded_body(response)
        except MalformedProviderResponseError:
            return b""
        finally:
            await response.aclose()

    def _status_error(
        self, status: int, headers: Mapping[str, str], what: str, body: bytes
    ) -> ProviderError | RecordingNotFoundError | RangeNotSatisfiableError:
        try:
            vendor_code = self.parse_error_body(json.loads(body))
        except ValueError:
            vendor_code = None
        detail = f"HTTP {status}" + (f", code {vendor_code}" if vendor_code else "")
        kwargs: dict[str, Any] = {
            "provider": self.provider,
            "vendor_code": vendor_code,
            "status": status,
        }
        if status in (401, 403):
            message = f"{self.label} rejected the gateway's credentials ({detail})"
            return ProviderAuthError(message, **kwargs)
        if status == 404:
            return RecordingNotFoundError(f"{self.label} has no {what}", provider=self.provider)
        if status == 416:
            size = unsatisfied_size(headers.get("content-range"))
            message = "the requested range is outside the media"
            return RangeNotSatisfiableError(message, size=size, provider=self.provider)
        retry_after = retry_after_seconds(headers.get("retry-after"))
        if status == 429:
            message = f"{self.label} is rate-limiting the gateway ({detail})"
            return RateLimitedError(message, retry_after=retry_after, transient="429", **kwargs)
        if status >= 500:
            message = f"{self.label} failed ({detail})"
            transient = str(status) if status in TRANSIENT_STATUSES else None
            return ProviderUnavailableError(
                message, transient=transient, retry_after=retry_after, **kwargs
            )
        message = f"{self.label} refused the request ({detail})"
        return MalformedProviderResponseError(message, **kwargs)


def _status(response: httpx.Response) -> int:
    return response.status_code


def _first(answer: tuple[int, bytes]) -> int:
    return answer[0]


#: Transport failures that happen before a request is sent: the provider saw nothing.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def may_have_acted(exc: ProviderError) -> bool:
    """Whether the request that failed with ``exc`` may have been carried out by the provider
    (its answer lost or replaced): not when it was refused (429) or never sent."""
    if isinstance(exc, RateLimitedError):
        return False
    return not isinstance(exc.__cause__, _NOT_SENT)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def unsatisfied_size(header: str | None) -> int | None:
    """The full size from a 416's ``Content-Range: bytes */size``, if it says."""
    match = _UNSATISFIED.match((header or "").strip())
    return int(match.group(1)) if match else None


def retry_after_seconds(value: str | None) -> int | None:
    """``Retry-After`` as whole seconds: a number, or an HTTP date relative to now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0, round((when - datetime.now(UTC)).total_seconds()))
