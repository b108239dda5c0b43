"""Several accounts per provider: each served only to its own credentials, as the providers do.

Account 0 is the demo's; account 1 has credentials derived from the seed. Another account's
credentials on a path are refused exactly as credentials of an account that does not exist,
and another account's recording is as missing as one that never existed.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, replace

import httpx
import pytest

from app.sandbox import (
    DEMO,
    Sandbox,
    SandboxAccount,
    SandboxConfig,
    build_dataset,
    create_sandbox_app,
)
from app.sandbox.data import READY_STATUS, STATUSES
from app.sandbox.s3 import Presigner
from app.sandbox.web import Urls

pytestmark = pytest.mark.anyio

PROVIDERS = ("twilio", "signalwire", "bird")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
DEMO_SAMPLES = {
    "twilio": "RE04a3d4b79350a180c170af92def4cbd2",
    "signalwire": "ffa8efb5-3c1b-423d-ad3f-af151778fd4a",
    "bird": "fbdf1270-e047-4279-bdb1-7b8fe972ef9d",
}
NOBODY = {
    "twilio": "AC" + "1" * 32,
    "signalwire": "11111111-1111-4111-8111-111111111111",
    "bird": "11111111-1111-4111-8111-111111111111",
}
FORBIDDEN: dict[str, dict[str, object]] = {
    "twilio": {
        "code": 20403,
        "message": "Forbidden",
        "more_info": "https://www.twilio.com/docs/errors/20403",
        "status": 403,
    },
    "signalwire": {
        "code": 20403,
        "message": "Forbidden",
        "more_info": "https://signalwire.com/docs/compatibility-api/reference/errors",
        "status": 403,
    },
    "bird": {"code": "Forbidden", "message": "You do not have access to this resource"},
}


@dataclass(frozen=True)
class Api:
    """How to reach one provider's recordings as one account."""

    provider: str

    def base(self, account: str) -> str:
        if self.provider == "bird":
            return f"/workspaces/{account}/recordings"
        prefix = "/api/laml" if self.provider == "signalwire" else ""
        return f"{prefix}/2010-04-01/Accounts/{account}/Recordings"

    def listing(self, account: str) -> str:
        return self.base(account) if self.provider == "bird" else f"{self.base(account)}.json"

    def item(self, account: str, rid: str) -> str:
        suffix = "" if self.provider == "bird" else ".json"
        return f"{self.base(account)}/{rid}{suffix}"

    def media(self, account: str, rid: str) -> str:
        return f"{self.base(account)}/{rid}.mp3"

    def headers(self, credentials: SandboxAccount) -> dict[str, str]:
        if self.provider == "bird":
            return {"Authorization": f"AccessKey {credentials.secret}"}
        pair = f"{credentials.account}:{credentials.secret}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}

    def not_found(self, path: str) -> dict[str, object]:
        if self.provider == "bird":
            return {"code": "NotFound", "message": "recording not found"}
        more_info = {
            "twilio": "https://www.twilio.com/docs/errors/20404",
            "signalwire": "https://signalwire.com/docs/compatibility-api/reference/errors",
        }[self.provider]
        return {
            "code": 20404,
            "message": f"The requested resource {path} was not found",
            "more_info": more_info,
            "status": 404,
        }

    async def walk(
        self, client: httpx.AsyncClient, account: SandboxAccount, size: int = 7
    ) -> list[str]:
        """Every id listed under the account's own path, following the pages."""
        headers = self.headers(account)
        key, items = ("limit", "results") if self.provider == "bird" else ("PageSize", "recordings")
        params: dict[str, str | int] | None = {key: size}
        ids: list[str] = []
        url: str | None = self.listing(account.account)
        while url is not None:
            response = await client.get(url, params=params, headers=headers)
            assert response.status_code == 200, response.text
            page = response.json()
            ids += [item["id" if self.provider == "bird" else "sid"] for item in page[items]]
            if self.provider == "bird":
                url = url if page.get("nextPageToken") else None
                params = {key: size, "pageToken": page.get("nextPageToken", "")}
            else:  # the next page's link carries its whole query
                url, params = page["next_page_uri"], None
        return ids


def listed_ids(sandbox: Sandbox, provider: str, index: int) -> list[str]:
    """What the path of account `index` lists by default (Twilio hides soft-deleted ones)."""
    listing = sandbox.dataset.listing(provider, sandbox.account(provider, index))
    return [r.id for r in listing if r.status != "deleted"]


# --- credentials and data --------------------------------------------------------------------


def test_account_zero_is_the_demo_and_keeps_its_data(sandbox: Sandbox) -> None:
    twilio, signalwire, bird = (DEMO.accounts(p)[0] for p in PROVIDERS)
    assert (twilio.account, twilio.secret) == (DEMO.twilio_account_sid, DEMO.twilio_auth_token)
    assert (twilio.api_key, twilio.api_secret) == (DEMO.twilio_api_key, DEMO.twilio_api_secret)
    assert (signalwire.account, signalwire.secret) == (
        DEMO.signalwire_project_id,
        DEMO.signalwire_api_token,
    )
    assert (bird.account, bird.secret) == (DEMO.bird_workspace_id, DEMO.bird_access_key)
    assert sandbox.sample_ids() == sandbox.sample_ids(0) == DEMO_SAMPLES
    assert [sandbox.account(p) for p in PROVIDERS] == [
        DEMO.twilio_account_sid,
        DEMO.signalwire_project_id,
        DEMO.bird_workspace_id,
    ]
    single = build_dataset(replace(sandbox.config, accounts_per_provider=1))
    assert list(sandbox.dataset) == list(single)  # more accounts leave account 0 as it was


def test_derived_credentials_have_the_providers_formats() -> None:
    twilio, signalwire, bird = (DEMO.accounts(p)[1] for p in PROVIDERS)
    assert re.fullmatch(r"AC[0-9a-f]{32}", twilio.account)
    assert re.fullmatch(r"[0-9a-f]{32}", twilio.secret)
    assert re.fullmatch(r"SK[0-9a-f]{32}", str(twilio.api_key))
    assert re.fullmatch(r"[0-9A-Za-z]{32}", str(twilio.api_secret))
    assert re.fullmatch(UUID, signalwire.account)
    assert re.fullmatch(r"PT[0-9a-f]{48}", signalwire.secret)
    assert signalwire.api_key is None and bird.api_key is None
    assert re.fullmatch(UUID, bird.account)
    assert len(bird.secret) >= 32


def test_derived_credentials_are_deterministic_distinct_and_hidden() -> None:
    accounts = [a for p in PROVIDERS for a in SandboxConfig(accounts_per_provider=4).accounts(p)]
    assert len({a.account for a in accounts}) == len({a.secret for a in accounts}) == 12
    assert (
        SandboxConfig(accounts_per_provider=4).accounts("twilio")[1] == DEMO.accounts("twilio")[1]
    )
    assert SandboxConfig(seed=7).accounts("bird")[1] != DEMO.accounts("bird")[1]
    assert SandboxConfig(seed=7).accounts("bird")[0] == DEMO.accounts("bird")[0]
    for account in accounts:
        assert account.secret not in repr(account)
        assert account.api_secret is None or account.api_secret not in repr(account)


def test_unknown_provider_has_no_accounts() -> None:
    with pytest.raises(ValueError):
        DEMO.accounts("vonage")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_account_holds_recordings_of_the_same_shape(sandbox: Sandbox, provider: str) -> None:
    first, second = (sandbox.dataset.listing(provider, a.account) for a in DEMO.accounts(provider))
    for index, records in enumerate((first, second)):
        assert len(records) == DEMO.recordings_per_provider
        assert {r.account for r in records} == {sandbox.account(provider, index)}
        assert {r.status for r in records} == set(STATUSES[provider])
        assert {r.channels for r in records} == {1, 2}
        assert records[0].created == first[0].created  # the same anchor: the listings interleave
    assert not {r.id for r in first} & {r.id for r in second}
    assert sandbox.sample_ids(1)[provider] == next(r.id for r in second if r.ready)
    assert sandbox.sample_ids(1)[provider] != DEMO_SAMPLES[provider]
    assert sum(1 for r in sandbox.dataset.all_records() if r.provider == provider) == 2 * len(first)


# --- the right account ----------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_account_one_is_served_to_its_own_credentials(
    client: httpx.AsyncClient, sandbox: Sandbox, provider: str
) -> None:
    api, mine = Api(provider), sandbox.accounts(provider)[1]
    rid = sandbox.sample_ids(1)[provider]
    response = await client.get(api.item(mine.account, rid), headers=api.headers(mine))
    assert response.status_code == 200
    body = response.json()
    assert body["id" if provider == "bird" else "sid"] == rid
    if provider != "bird":
        assert body["account_sid"] == mine.account
    assert await api.walk(client, mine) == listed_ids(sandbox, provider, 1)


async def test_twilio_api_key_opens_its_own_account_only(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    api, (demo, mine) = Api("twilio"), sandbox.accounts("twilio")
    key = (str(mine.api_key), str(mine.api_secret))
    own = await client.get(api.listing(mine.account), auth=key)
    assert own.status_code == 200 and own.json()["recordings"]
    other = await client.get(api.listing(demo.account), auth=key)
    assert (other.status_code, other.json()) == (403, FORBIDDEN["twilio"])


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_listings_show_only_the_paths_account(
    client: httpx.AsyncClient, sandbox: Sandbox, provider: str
) -> None:
    api, (demo, mine) = Api(provider), sandbox.accounts(provider)
    zero, one = await api.walk(client, demo), await api.walk(client, mine)
    assert zero == listed_ids(sandbox, provider, 0) and one == listed_ids(sandbox, provider, 1)
    assert zero and one and not set(zero) & set(one)


# --- another account -------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_other_accounts_credentials_are_refused_as_for_no_account(
    client: httpx.AsyncClient, sandbox: Sandbox, provider: str, method: str
) -> None:
    api, (demo, mine) = Api(provider), sandbox.accounts(provider)
    rid = sandbox.sample_ids(1)[provider]
    for caller, path_account in ((demo, mine.account), (mine, demo.account)):
        headers = api.headers(caller)
        urls = [api.listing(path_account), api.item(path_account, rid)]
        if method == "DELETE":
            urls = urls[1:]
        for url in urls:
            response = await client.request(method, url, headers=headers)
            assert (response.status_code, response.json()) == (403, FORBIDDEN[provider]), url
            nobody = await client.request(
                method, url.replace(path_account, NOBODY[provider]), headers=headers
            )
            assert (nobody.status_code, nobody.json()) == (response.status_code, response.json())
    assert sandbox.dataset.get(provider, rid, mine.account) is not None


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_other_accounts_recording_is_not_found(
    client: httpx.AsyncClient, sandbox: Sandbox, provider: str, method: str
) -> None:
    api, (demo, mine) = Api(provider), sandbox.accounts(provider)
    theirs = sandbox.sample_ids(1)[provider]
    url = api.item(demo.account, theirs)
    response = await client.request(method, url, headers=api.headers(demo))
    assert (response.status_code, response.json()) == (404, api.not_found(url))
    if provider == "twilio":
        hidden = await client.get(
            url, params={"IncludeSoftDeleted": "true"}, headers=api.headers(demo)
        )
        assert hidden.status_code == 404
    assert sandbox.dataset.get(provider, theirs) is not None
    own = await client.get(api.item(mine.account, theirs), headers=api.headers(mine))
    assert own.status_code == 200


async def test_compat_page_token_of_another_account_is_refused(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    for provider in ("twilio", "signalwire"):
        api, mine = Api(provider), sandbox.accounts(provider)[1]
        token = f"PA{sandbox.sample_ids(0)[provider]}"
        response = await client.get(
            api.listing(mine.account), params={"PageToken": token}, headers=api.headers(mine)
        )
        assert (response.status_code, response.json()["code"]) == (400, 21481)
        own = f"PA{sandbox.sample_ids(1)[provider]}"
        ok = await client.get(
            api.listing(mine.account), params={"PageToken": own}, headers=api.headers(mine)
        )
        assert ok.status_code == 200


async def test_bird_page_token_of_another_workspace_is_refused(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    api, (demo, mine) = Api("bird"), sandbox.accounts("bird")
    page = await client.get(
        api.listing(demo.account), params={"limit": 3}, headers=api.headers(demo)
    )
    token = page.json()["nextPageToken"]
    response = await client.get(
        api.listing(mine.account), params={"pageToken": token}, headers=api.headers(mine)
    )
    assert response.status_code == 422
    assert response.json()["details"] == {"pageToken": ["invalid page token"]}


# --- media -----------------------------------------------------------------------------------


async def test_twilio_media_only_for_its_account(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    api, (demo, mine) = Api("twilio"), sandbox.accounts("twilio")
    rid = sandbox.sample_ids(1)["twilio"]
    own = await client.get(api.media(mine.account, rid), headers=api.headers(mine))
    assert (own.status_code, own.headers["content-type"]) == (200, "audio/mpeg")
    refused = await client.get(api.media(mine.account, rid), headers=api.headers(demo))
    assert (refused.status_code, refused.json()) == (403, FORBIDDEN["twilio"])
    wav_url = f"{api.base(demo.account)}/{rid}"
    missing = await client.get(wav_url, headers=api.headers(demo))
    assert (missing.status_code, missing.json()) == (404, api.not_found(wav_url))


async def test_public_media_only_under_its_account() -> None:
    """SignalWire media, and Twilio's with media auth off, need no credentials: the path's
    account must still own the recording."""
    app = create_sandbox_app(SandboxConfig(twilio_media_auth=False))
    sandbox: Sandbox = app.state.sandbox
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        for provider in ("twilio", "signalwire"):
            api, (demo, mine) = Api(provider), sandbox.accounts(provider)
            rid = sandbox.sample_ids(1)[provider]
            own = await client.get(api.media(mine.account, rid))
            assert own.status_code == 200 and own.content[:2] == b"\xff\xe3"
            url = api.media(demo.account, rid)
            other = await client.get(url)
            assert (other.status_code, other.json()) == (404, api.not_found(url))


async def test_bird_media_links_only_for_the_workspaces_recordings(
    client: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    api, (demo, mine) = Api("bird"), sandbox.accounts("bird")
    rid = sandbox.sample_ids(1)["bird"]
    redirect = await client.get(api.media(mine.account, rid), headers=api.headers(mine))
    assert redirect.status_code == 307
    location = redirect.headers["location"]
    assert f"/{mine.account}/{rid}.mp3?" in location
    audio = await client.get(location)
    assert (audio.status_code, audio.headers["content-type"]) == (200, "audio/mpeg")
    other = await client.get(api.media(demo.account, rid), headers=api.headers(demo))
    assert (other.status_code, other.json()) == (404, api.not_found(""))
    moved = await client.get(location.replace(mine.account, demo.account))
    assert moved.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in moved.text
    # A correctly signed link naming the wrong workspace finds no object there.
    forged = Presigner(sandbox).url(Urls("http://sandbox.test", ""), demo.account, rid)
    missing = await client.get(forged)
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    assert f"<Key>{demo.account}/{rid}.mp3</Key>" in missing.text


# --- one account only ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_single_account_per_provider(provider: str) -> None:
    config = SandboxConfig(accounts_per_provider=1)
    app = create_sandbox_app(config)
    sandbox: Sandbox = app.state.sandbox
    assert [a.account for a in sandbox.accounts(provider)] == [sandbox.account(provider)]
    assert sandbox.sample_ids() == DEMO_SAMPLES
    assert sandbox.dataset.accounts(provider) == [sandbox.account(provider)]
    api, demo = Api(provider), sandbox.accounts(provider)[0]
    would_be = DEMO.accounts(provider)[1]  # what account 1 would be with two accounts
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as client:
        assert await api.walk(client, demo) == listed_ids(sandbox, provider, 0)
        response = await client.get(api.listing(would_be.account), headers=api.headers(would_be))
        assert response.status_code == 401
        assert READY_STATUS[provider] in {r.status for r in sandbox.dataset}
