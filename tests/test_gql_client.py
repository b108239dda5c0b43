"""A real GraphQL client against the demo over a real socket: the ``gql`` library fetches the
schema by introspection (on in the demo), validates its documents against it, runs the demo
query and walks the ``recordings`` connection to its end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.httpx import HTTPXAsyncTransport

from app.demo import demo_settings
from app.main import create_app
from app.sandbox import DEMO, Sandbox, create_sandbox_app
from app.settings import Settings
from tests.listing.support import listed
from tests.servers import serve

pytestmark = pytest.mark.anyio

DEMO_QUERY = """
    query Demo($twilio: ID!, $bird: ID!) {
      twilio: recording(provider: TWILIO, id: $twilio) { id status durationSeconds mediaUrl }
      bird: recording(provider: BIRD, id: $bird) { id status durationSeconds mediaUrl }
    }
"""
PAGE = """
    query Page($after: String) {
      recordings(first: 25, after: $after) {
        edges { node { provider id accountId } }
        pageInfo { hasNextPage endCursor }
      }
    }
"""


@pytest.fixture(scope="module")
def demo() -> Iterator[tuple[str, Sandbox]]:
    """The demo as ``serve --demo`` builds it, its sandbox mounted at /sandbox, on a socket.

    The providers are pointed at the sandbox through the gateway's own URL, known only once
    the socket is bound: the app is built lazily for that."""
    sandbox = create_sandbox_app(DEMO)
    holder: dict[str, Any] = {}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await holder["app"](scope, receive, send)

    with serve(sandbox) as sandbox_url:
        settings = demo_settings(Settings(), sandbox_url, DEMO)
        holder["app"] = create_app(settings)
        with serve(holder["app"]) as url:
            yield url, sandbox.state.sandbox


async def test_gql_fetches_the_schema_and_runs_the_demo_query(
    demo: tuple[str, Sandbox],
) -> None:
    url, sandbox = demo
    samples = sandbox.sample_ids()
    transport = HTTPXAsyncTransport(url=f"{url}/graphql")
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        variables = {"twilio": samples["twilio"], "bird": samples["bird"]}
        result = await session.execute(GraphQLRequest(DEMO_QUERY, variable_values=variables))
        assert session.client.schema is not None
        assert session.client.schema.get_type("Recording") is not None
    assert result["twilio"]["id"] == samples["twilio"]
    assert result["bird"]["status"] == "COMPLETED"
    assert result["bird"]["mediaUrl"].startswith(f"{url}/media/")


async def test_gql_walks_the_listing_to_its_end(demo: tuple[str, Sandbox]) -> None:
    url, sandbox = demo
    transport = HTTPXAsyncTransport(url=f"{url}/graphql")
    seen: list[tuple[str, str]] = []
    after: str | None = None
    async with Client(transport=transport, fetch_schema_from_transport=True) as session:
        for _ in range(50):  # bounded: 3 x 36 demo recordings are 5 pages of 25
            request = GraphQLRequest(PAGE, variable_values={"after": after})
            page = (await session.execute(request))["recordings"]
            seen += [(edge["node"]["provider"], edge["node"]["id"]) for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    expected = {
        (record.provider.upper(), record.id)
        for provider in ("twilio", "signalwire", "bird")
        for record in sandbox.dataset.listing(provider)
        if listed(record)
    }
    assert len(seen) == len(set(seen)), "every recording once"
    assert set(seen) == expected
