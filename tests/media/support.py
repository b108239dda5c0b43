"""Helpers for the media tests: minting links through GraphQL, and taking tokens apart."""

from __future__ import annotations

from typing import Any

import httpx

from app.models import Provider
from app.sandbox import SandboxConfig
from app.signing import Signer
from tests.support import SIGNING_KEY

MEDIA_QUERY = """
query Media($provider: Provider!, $id: ID!, $format: MediaFormat!, $delivery: MediaDelivery!,
            $expiresIn: Int!) {
  recording(provider: $provider, id: $id) {
    status
    media(format: $format, delivery: $delivery, expiresIn: $expiresIn) {
      url expiresAt format contentType
    }
    mediaUrl(format: $format, delivery: $delivery, expiresIn: $expiresIn)
  }
}
"""

#: Every (provider, format) the providers serve.
SERVED = [
    (Provider.TWILIO, "MP3"),
    (Provider.TWILIO, "WAV"),
    (Provider.SIGNALWIRE, "MP3"),
    (Provider.SIGNALWIRE, "WAV"),
    (Provider.BIRD, "MP3"),
]


def media_variables(
    provider: Provider,
    rid: str,
    fmt: str = "MP3",
    delivery: str = "PROXY",
    expires_in: int = 900,
) -> dict[str, Any]:
    return {
        "provider": provider.name,
        "id": rid,
        "format": fmt,
        "delivery": delivery,
        "expiresIn": expires_in,
    }


async def mint(client: httpx.AsyncClient, provider: Provider, rid: str, **kwargs: Any) -> str:
    """A PROXY (or other) media URL for one recording, through GraphQL."""
    body = await query_media(client, provider, rid, **kwargs)
    assert "errors" not in body, body
    url: str = body["data"]["recording"]["media"]["url"]
    return url


async def query_media(
    client: httpx.AsyncClient, provider: Provider, rid: str, **kwargs: Any
) -> dict[str, Any]:
    variables = media_variables(provider, rid, **kwargs)
    response = await client.post("/graphql", json={"query": MEDIA_QUERY, "variables": variables})
    body: dict[str, Any] = response.json()
    return body


def mint_sync(client: httpx.Client, provider: Provider, rid: str, **kwargs: Any) -> str:
    """``mint`` over a real socket."""
    variables = media_variables(provider, rid, **kwargs)
    body = client.post("/graphql", json={"query": MEDIA_QUERY, "variables": variables}).json()
    assert "errors" not in body, body
    url: str = body["data"]["recording"]["media"]["url"]
    return url


def token_of(url: str) -> str:
    prefix, _, token = url.rpartition("/media/")
    assert prefix and token, url
    return token


def claims(token: str, key: str = SIGNING_KEY) -> dict[str, Any]:
    return Signer([key]).verify(token, purpose="media")


def resigned(url: str, key: str = SIGNING_KEY, *, sign_with: str = "", **changes: Any) -> str:
    """The link (signed with ``key``) with its payload changed, signed again (``sign_with``)."""
    payload = {**claims(token_of(url), key), **changes}
    signer = Signer([sign_with or key])
    return url.replace(token_of(url), signer.sign(payload, purpose="media"))


def flipped(url: str, position: int) -> str:
    """The link with one bit of the token's character at ``position`` flipped."""
    token = token_of(url)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
    for index in range(position, len(token)):
        changed = chr(ord(token[index]) ^ 1)
        if changed in alphabet:
            return url.replace(token, token[:index] + changed + token[index + 1 :])
    raise AssertionError("no flippable character")


def accounts_of(config: SandboxConfig) -> list[str]:
    return [config.twilio_account_sid, config.signalwire_project_id, config.bird_workspace_id]
