"""Cursors are opaque, signed, tied to their filter, and never point the gateway elsewhere."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from app.models import Provider, RecordingStatus
from app.sandbox import Sandbox, SandboxConfig
from app.signing import Signer
from tests.listing.support import Criteria, expected, page, refs
from tests.support import SIGNING_KEY

pytestmark = pytest.mark.anyio

TWILIO_LIST = f"/2010-04-01/Accounts/{SandboxConfig().twilio_account_sid}/Recordings.json"


def forge(payload: dict[str, Any], purpose: str = "cursor/default", key: str = SIGNING_KEY) -> str:
    return Signer([key]).sign(payload, purpose=purpose)


def altered(cursor: str, index: int) -> str:
    return cursor[:index] + ("A" if cursor[index] != "A" else "B") + cursor[index + 1 :]


async def refused(client: httpx.AsyncClient, after: str, criteria: Criteria | None = None) -> str:
    body = await page(client, 5, after, criteria)
    assert body["data"] is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    message: str = error["message"]
    return message


async def end_cursor(client: httpx.AsyncClient, criteria: Criteria | None = None) -> str:
    body = await page(client, 5, criteria=criteria)
    cursor: str = body["data"]["recordings"]["pageInfo"]["endCursor"]
    return cursor


async def test_a_cursor_is_url_safe_base64_with_nothing_readable(
    gateway: httpx.AsyncClient, sandbox_config: SandboxConfig
) -> None:
    cursor = await end_cursor(gateway)
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert set(cursor) <= alphabet
    for secret_or_id in (sandbox_config.twilio_account_sid, "PageToken", "twilio"):
        assert secret_or_id not in cursor


@pytest.mark.parametrize("junk", ["", "abc", "e30", base64.b64encode(b'{"v":1}').decode()])
async def test_malformed_cursors(gateway: httpx.AsyncClient, sandbox: Sandbox, junk: str) -> None:
    assert "not a valid cursor" in await refused(gateway, junk)
    assert sandbox.requests == []


async def test_a_tampered_cursor_is_refused(gateway: httpx.AsyncClient, sandbox: Sandbox) -> None:
    cursor = await end_cursor(gateway)
    sandbox.requests.clear()
    for index in (1, 10, len(cursor) - 3):  # in the payload and in the signature
        assert "not a valid cursor" in await refused(gateway, altered(cursor, index))
    assert sandbox.requests == []


async def test_cursors_of_other_keys_or_purposes_are_refused(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    payload = {"v": 1, "f": "x", "p": {}}
    assert "not a valid cursor" in await refused(gateway, forge(payload, purpose="media"))
    other_key = forge(payload, key="another-key-0123456789abcdef")
    assert "not a valid cursor" in await refused(gateway, other_key)
    assert sandbox.requests == []


async def test_a_cursor_only_resumes_its_own_filter(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    completed = Criteria(statuses=(RecordingStatus.COMPLETED,))
    cursor = await end_cursor(gateway, completed)
    sandbox.requests.clear()
    assert "different filter" in await refused(gateway, cursor)
    twilio = Criteria(providers=(Provider.TWILIO,), statuses=(RecordingStatus.COMPLETED,))
    assert "different filter" in await refused(gateway, cursor, twilio)
    assert sandbox.requests == []
    same = await page(gateway, 5, cursor, completed)
    assert refs(same["data"]["recordings"]) == expected(sandbox, completed)[5:10]


@pytest.mark.parametrize(
    "token",
    [
        "https://evil.test" + TWILIO_LIST,
        "//evil.test" + TWILIO_LIST,
        "/2010-04-01/Accounts/AC00000000000000000000000000000000/Recordings.json",
        TWILIO_LIST.replace("Recordings.json", "Recordings/RE" + "0" * 32 + ".json"),
        TWILIO_LIST + "/../../Calls.json",
        TWILIO_LIST + "#x",
        "relative/" + TWILIO_LIST,
    ],
)
async def test_a_signed_cursor_cannot_point_the_gateway_elsewhere(
    gateway: httpx.AsyncClient, sandbox: Sandbox, token: str
) -> None:
    """Even with the signing key, a page token must be this account's list path."""
    cursor = await end_cursor(gateway)
    fingerprint = Signer([SIGNING_KEY]).verify(cursor, purpose="cursor/default")["f"]
    sandbox.requests.clear()
    forged = forge({"v": 1, "f": fingerprint, "p": {"twilio": [token, 0, None]}})
    assert "did not give" in await refused(gateway, forged)
    assert sandbox.requests == []


async def test_a_page_token_the_provider_no_longer_knows(
    gateway: httpx.AsyncClient, sandbox: Sandbox
) -> None:
    """Twilio answers 400 / 21481: PROVIDER_BAD_RESPONSE for Twilio, the others still listed."""
    cursor = await end_cursor(gateway)
    lanes = Signer([SIGNING_KEY]).verify(cursor, purpose="cursor/default")
    unknown = f"{TWILIO_LIST}?PageSize=5&Page=1&PageToken=PARE{'0' * 32}"
    lanes["p"]["twilio"] = [unknown, 0, None]
    body = await page(gateway, 5, forge(lanes))
    [error] = body["errors"]
    assert error["extensions"]["code"] == "PROVIDER_BAD_RESPONSE"
    assert error["extensions"]["provider"] == "TWILIO"
    assert error["extensions"]["providerCode"] == "21481"
    nodes = body["data"]["recordings"]["nodes"]
    assert nodes and {node["provider"] for node in nodes} <= {"SIGNALWIRE", "BIRD"}
