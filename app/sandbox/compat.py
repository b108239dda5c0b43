"""The Twilio-style Recordings API shared by the Twilio and SignalWire ("LaML") sandboxes.

`Dialect` holds what differs between the two (ids, auth, date filters, JSON rendering);
`CompatApi` serves fetch, list, delete and media for one dialect.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.sandbox.audio import AudioSpec
from app.sandbox.config import SandboxAccount, SandboxConfig
from app.sandbox.data import SandboxRecording
from app.sandbox.errors import compat_error
from app.sandbox.media import mp3_response, wav_response
from app.sandbox.paging import Window, after, at_offset, before
from app.sandbox.state import Sandbox
from app.sandbox.web import Urls, basic_credentials, route_path

Predicate = Callable[[SandboxRecording], bool]
PAGING_KEYS = frozenset({"Page", "PageSize", "PageToken"})
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


class BadRequest(Exception):
    """A query parameter the provider would reject with 400."""

    def __init__(self, message: str, code: int = 20001) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Dialect(ABC):
    """What one Twilio-compatible provider does its own way."""

    provider: str
    prefix: str
    realm: str
    envelope_has_start_end: bool

    @abstractmethod
    def credentials(self, account: SandboxAccount) -> set[tuple[str, str]]:
        """The Basic (user, password) pairs that authenticate as `account`."""

    @abstractmethod
    def media_needs_auth(self, config: SandboxConfig) -> bool:
        """Whether media downloads require Basic auth."""

    @abstractmethod
    def render(self, record: SandboxRecording, urls: Urls) -> dict[str, object]:
        """The recording resource as the provider's JSON."""

    @abstractmethod
    def date_filter(self, key: str, value: str) -> Predicate:
        """A predicate for `DateCreated`, `DateCreated<` or `DateCreated>`; ValueError if bad."""

    def include_hidden(self, request: Request) -> bool:
        """Whether soft-deleted recordings are visible to this request."""
        return False

    def account_path(self, account: str) -> str:
        return f"{self.prefix}/2010-04-01/Accounts/{account}"


class CompatApi:
    """Routes of one Twilio-compatible provider over the shared `Sandbox`."""

    def __init__(self, sandbox: Sandbox, dialect: Dialect) -> None:
        self.sandbox = sandbox
        self.dialect = dialect

    def routes(self) -> list[Route]:
        base = self.dialect.account_path("{account}")
        return [
            Route(f"{base}/Recordings.json", self.list_recordings, methods=["GET"]),
            Route(f"{base}/Recordings/{{name}}", self.item, methods=["GET", "DELETE"]),
        ]

    # --- auth and errors -------------------------------------------------------------------

    def authorize(self, request: Request) -> Response | None:
        """401 unless the credentials are some account's, 403 unless that account is the path's."""
        given = basic_credentials(request)
        accounts = self.sandbox.accounts(self.dialect.provider)
        owner = next((a for a in accounts if given in self.dialect.credentials(a)), None)
        if owner is None:
            realm = {"www-authenticate": f'Basic realm="{self.dialect.realm}"'}
            return compat_error(self.dialect.provider, 401, headers=realm)
        if request.path_params["account"] != owner.account:
            return compat_error(self.dialect.provider, 403)
        return None

    def not_found(self, request: Request) -> Response:
        message = f"The requested resource {route_path(request.scope)} was not found"
        return compat_error(self.dialect.provider, 404, message=message)

    def find(self, request: Request, sid: str) -> SandboxRecording | None:
        """The recording if it belongs to the path's account (another account's is missing)."""
        account = request.path_params["account"]
        record = self.sandbox.dataset.get(self.dialect.provider, sid, account)
        if record is None or (
            record.status == "deleted" and not self.dialect.include_hidden(request)
        ):
            return None
        return record

    # --- fetch, delete, media ------------------------------------------------------------------

    async def item(self, request: Request) -> Response:
        sid, dot, extension = request.path_params["name"].partition(".")
        json_call = extension == "json" or request.method == "DELETE"
        if json_call or self.dialect.media_needs_auth(self.sandbox.config):
            denied = self.authorize(request)
            if denied is not None:
                return denied
        record = self.find(request, sid)
        if record is None or (dot and extension not in {"json", "wav", "mp3"}):
            return self.not_found(request)
        if request.method == "DELETE":
            if record.status == "deleted":  # soft-deleted: readable, not deletable again
                return self.not_found(request)
            return self.delete(record)
        if extension == "json":
            return JSONResponse(self.dialect.render(record, Urls.of(request)))
        return await self.media(request, record, extension)

    def delete(self, record: SandboxRecording) -> Response:
        """204 with no body. Twilio keeps the metadata for 40 days, ``status: "deleted"``,
        readable with ``IncludeSoftDeleted=true`` only, and out of listings and media;
        SignalWire forgets it at once."""
        dataset = self.sandbox.dataset
        if record.provider == "twilio":
            dataset.put(replace(record, status="deleted", updated=self.sandbox.now()))
        else:
            dataset.delete(record.provider, record.id)
        return Response(status_code=204)

    async def media(self, request: Request, record: SandboxRecording, extension: str) -> Response:
        if not record.ready:
            return self.not_found(request)
        spec = AudioSpec.of(record.id, record.duration, record.channels)
        honor = self.sandbox.config.honor_range
        if extension == "mp3":
            return await mp3_response(request, spec, self.sandbox.mp3_cache, honor_range=honor)
        return wav_response(request, spec, honor_range=honor)

    # --- list --------------------------------------------------------------------------------

    async def list_recordings(self, request: Request) -> Response:
        denied = self.authorize(request)
        if denied is not None:
            return denied
        try:
            return JSONResponse(self.page(request))
        except BadRequest as exc:
            return compat_error(self.dialect.provider, 400, code=exc.code, message=exc.message)

    def page(self, request: Request) -> dict[str, object]:
        params = request.query_params
        size = _int(params, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        number = _int(params, "Page", 0, 0, None)
        tests = self.filters(request)
        account = request.path_params["account"]
        listing = self.sandbox.dataset.listing(self.dialect.provider, account)
        records = [r for r in listing if all(test(r) for test in tests)]
        token = params.get("PageToken")
        window = self.window(records, account, size, number, token)
        return self.envelope(request, window, size, number, token)

    def filters(self, request: Request) -> list[Predicate]:
        params = request.query_params
        tests: list[Predicate] = []
        if not self.dialect.include_hidden(request):
            tests.append(lambda r: r.status != "deleted")
        if (call := params.get("CallSid")) is not None:
            tests.append(lambda r: r.call_id == call)
        if (conference := params.get("ConferenceSid")) is not None:
            tests.append(lambda r: r.conference_id == conference)
        for key in ("DateCreated", "DateCreated<", "DateCreated>"):
            if (value := params.get(key)) is not None:
                try:
                    tests.append(self.dialect.date_filter(key, value.lstrip("=")))
                except ValueError as exc:
                    raise BadRequest(f"Invalid value for {key}: {value!r}") from exc
        return tests

    def window(
        self,
        records: list[SandboxRecording],
        account: str,
        size: int,
        number: int,
        token: str | None,
    ) -> Window:
        if token is None:
            return at_offset(records, number * size, size)
        position = None
        if token[:2] in {"PA", "PB"}:
            position = self.sandbox.dataset.position(self.dialect.provider, token[2:], account)
        if position is None:
            raise BadRequest(f"Invalid PageToken: {token}", code=21481)
        pager = after if token.startswith("PA") else before
        return pager(records, position, size)

    def envelope(
        self, request: Request, window: Window, size: int, number: int, token: str | None
    ) -> dict[str, object]:
        urls = Urls.of(request)
        kept = [(k, v) for k, v in request.query_params.multi_items() if k not in PAGING_KEYS]
        base = self.dialect.account_path(request.path_params["account"]) + "/Recordings.json"

        def link(page: int, page_token: str | None) -> str:
            query = [*kept, ("PageSize", str(size)), ("Page", str(page))]
            query += [("PageToken", page_token)] if page_token else []
            return urls.relative(f"{base}?{urlencode(query)}")

        items = window.items
        next_uri = link(number + 1, f"PA{items[-1].id}") if items and window.more_after else None
        prev_uri = None
        if items and window.more_before:
            prev_uri = link(max(number - 1, 0), f"PB{items[0].id}")
        body: dict[str, object] = {
            "recordings": [self.dialect.render(r, urls) for r in items],
            "page": number,
            "page_size": size,
            "uri": link(number, token),
            "first_page_uri": link(0, None),
            "next_page_uri": next_uri,
            "previous_page_uri": prev_uri,
        }
        if self.dialect.envelope_has_start_end:
            body["start"] = number * size
            body["end"] = number * size + max(len(items) - 1, 0)
        return body


def _int(params: QueryParams, key: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Invalid value for {key}: {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise BadRequest(f"{key} must be between {low} and {high or 'infinity'}")
    return value


def day_bounds(moment: datetime) -> tuple[datetime, datetime]:
    """The first and last microsecond of the UTC day of `moment`."""
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start.replace(hour=23, minute=59, second=59, microsecond=999_999)


def rfc2822(moment: datetime) -> str:
    """`Fri, 14 Oct 2016 21:56:34 +0000`."""
    return format_datetime(moment.astimezone(UTC))


def rfc2822_or_none(moment: datetime | None) -> str | None:
    """`rfc2822(moment)`, or None for an unset time."""
    return None if moment is None else rfc2822(moment)
