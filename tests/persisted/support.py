"""A client that speaks APQ as Apollo Client's persisted-query link does.

What the link (``@apollo/client/link/persisted-queries``) does, step by step: it hashes
``print(document)`` with SHA-256; sends the operation without ``query`` and with
``extensions.persistedQuery = {version: 1, sha256Hash}`` (by GET, with
``useGETForHashedQueries``, the variables and extensions as JSON parameters); on an error
with the message ``PersistedQueryNotFound`` or the code ``PERSISTED_QUERY_NOT_FOUND`` (or
``...NOT_SUPPORTED``, which also turns hashes off) it resends once, by POST, with the query
(and the extension, unless turned off). Each exchange is kept so that tests can assert the
sequence.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from graphql import parse, print_ast

NOT_FOUND_BODY = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}


def printed(query: str) -> str:
    """The text the link sends and hashes: graphql's ``print`` of the parsed document."""
    return print_ast(parse(query))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256(text)}}


@dataclass(frozen=True)
class Exchange:
    """One HTTP request the link made: its method, whether it carried the query, and the
    answer."""

    method: str
    with_query: bool
    status: int
    body: dict[str, Any]


@dataclass
class ApolloPersistedLink:
    """The link in front of an HTTP transport to ``/graphql``."""

    client: httpx.AsyncClient
    use_get_for_hashed_queries: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    exchanges: list[Exchange] = field(default_factory=list)

    async def run(
        self, query: str, variables: Mapping[str, Any], operation_name: str
    ) -> dict[str, Any]:
        text = printed(query)
        extensions = persisted(text) if self.enabled else {}
        method = "GET" if self.use_get_for_hashed_queries and self.enabled else "POST"
        body = await self._send(
            method, None if self.enabled else text, variables, operation_name, extensions
        )
        codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
        messages = {e.get("message") for e in body.get("errors", [])}
        not_supported = "PERSISTED_QUERY_NOT_SUPPORTED" in codes or (
            "PersistedQueryNotSupported" in messages
        )
        not_found = "PERSISTED_QUERY_NOT_FOUND" in codes or "PersistedQueryNotFound" in messages
        if self.enabled and (not_supported or not_found):
            if not_supported:
                self.enabled = False
                extensions = {}
            body = await self._send("POST", text, variables, operation_name, extensions)
        return body

    async def _send(
        self,
        method: str,
        query: str | None,
        variables: Mapping[str, Any],
        operation_name: str,
        extensions: Mapping[str, Any],
    ) -> dict[str, Any]:
        # HttpLink's body: operationName, variables, extensions, and query only if included.
        payload: dict[str, Any] = {"operationName": operation_name, "variables": dict(variables)}
        if extensions:
            payload["extensions"] = dict(extensions)
        if query is not None:
            payload["query"] = query
        headers = {"accept": "*/*", "content-type": "application/json", **self.headers}
        if method == "GET":
            params = {
                name: value if isinstance(value, str) else json.dumps(value)
                for name, value in payload.items()
            }
            request = self.client.build_request("GET", "/graphql", params=params, headers=headers)
        else:
            request = self.client.build_request("POST", "/graphql", json=payload, headers=headers)
        response = await self.client.send(request)
        assert response.headers["content-type"].startswith("application/json"), response.text
        answer: dict[str, Any] = response.json()
        self.exchanges.append(Exchange(method, query is not None, response.status_code, answer))
        return answer
