"""No label value, nor anything else in a scrape, carries a recording id, an API key, a
media token, a provider credential or the metrics token, whatever clients sent."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from app.access.keys import key_hash, new_key
from app.models import Provider
from app.sandbox import Sandbox, SandboxConfig
from tests.media.support import mint, token_of
from tests.metrics.support import Scrape, gateway_with
from tests.support import RECORDING_QUERY, SIGNING_KEY, secrets_of

pytestmark = pytest.mark.anyio

METRICS_TOKEN = "metrics-token-fedcba9876543210"


async def test_a_scrape_after_queries_with_ids_and_keys_holds_none_of_them(
    sandbox_config: SandboxConfig, sandbox_app: Starlette, sandbox: Sandbox
) -> None:
    key, wrong_key = new_key(), new_key()
    env = {"GATEWAY_API_KEYS": f"sha256:{key_hash(key)}", "GATEWAY_METRICS_TOKEN": METRICS_TOKEN}
    ids = sandbox.sample_ids()
    seen: list[str] = [key, wrong_key, METRICS_TOKEN, SIGNING_KEY, *secrets_of(sandbox_config)]
    async with gateway_with(sandbox_config, sandbox_app, **env) as client:
        client.headers["authorization"] = f"Bearer {key}"
        for provider in Provider:
            rid = ids[provider.value]
            seen.append(rid)
            variables = {"provider": provider.name, "id": rid}
            answer = await client.post(
                "/graphql", json={"query": RECORDING_QUERY, "variables": variables}
            )
            assert answer.json()["data"]["recording"]["id"] == rid
            inline = f'query {{ recording(provider: {provider.name}, id: "{rid}") {{ id }} }}'
            await client.get("/graphql", params={"query": inline})
            # An id, or the key itself, as an operation name: refused or anonymous.
            await client.post("/graphql", json={"query": inline, "operationName": rid})
            url = await mint(client, provider, rid)
            seen.append(token_of(url))
            assert (await client.get(url)).status_code == 200
        await client.post("/graphql", json={"query": "{ __typename }", "operationName": key})
        twilio = ids["twilio"]
        named = f'query {twilio} {{ recording(provider: TWILIO, id: "{twilio}") {{ id }} }}'
        await client.post("/graphql", json={"query": named, "operationName": twilio})
        client.headers["authorization"] = f"Bearer {wrong_key}"
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 401
        response = await client.get(
            "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
        )
    assert response.status_code == 200
    scrape = Scrape.parse(response.text)
    assert scrape.value("gateway_media_bytes_relayed_total", provider="bird") > 0
    for value in seen:
        assert value not in response.text, value
        assert value.lower() not in response.text.lower(), value
