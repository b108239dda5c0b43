"""Serve a recorded provider payload through the real gateway and read it back."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.models import Provider
from app.settings import Settings
from tests.support import RECORDING_QUERY, gateway_client, graphql

FIXTURES = Path(__file__).parent.parent / "fixtures"

Reader = Callable[[Provider, str], Awaitable[tuple[dict[str, Any], list[httpx.Request]]]]


def load(provider: Provider, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / provider.value / name).read_text())
    return payload


@pytest.fixture
def read_fixture(settings: Settings) -> Reader:
    """Answer the gateway's upstream request with a recorded payload; return the Recording."""

    async def read(provider: Provider, name: str) -> tuple[dict[str, Any], list[httpx.Request]]:
        payload = load(provider, name)
        seen: list[httpx.Request] = []

        def upstream(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200, json=payload)

        rid = payload.get("sid") or payload["id"]
        async with gateway_client(settings, httpx.MockTransport(upstream)) as client:
            body = await graphql(client, RECORDING_QUERY, {"provider": provider.name, "id": rid})
        assert "errors" not in body, body
        recording: dict[str, Any] = body["data"]["recording"]
        assert recording["raw"] == {k: v for k, v in payload.items() if k != "url"}
        return recording, seen

    return read
