"""The way out: an egress proxy from the environment, and a private certificate authority.

Both over real loopback sockets, against both transports: a forward proxy
(``tests.servers.forward_proxy``) that relays ``CONNECT`` tunnels and absolute-form
requests and records each, and servers whose certificates a throwaway CA signed (trustme).
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator

import httpx
import pytest
import trustme
from starlette.types import Receive, Scope, Send

from app.sandbox import DEMO, create_sandbox_app
from app.settings import Settings
from app.upstream.tls import tls_context
from tests.servers import ForwardProxy, ProxiedRequest, forward_proxy, serve
from tests.support import gateway_client, graphql, sandbox_env
from tests.upstream.support import MB, pattern, transport, upstream_client
from tests.upstream.test_transport import echo

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(certificate_authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "private-ca.pem"
    certificate_authority.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tls_url(certificate_authority: trustme.CA) -> Iterator[str]:
    with serve(echo, tls=certificate_authority.issue_cert("127.0.0.1")) as url:
        yield url


@pytest.fixture(scope="module")
def plain_url() -> Iterator[str]:
    with serve(echo) as url:
        yield url


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy() as started:
        yield started


def refused_url() -> str:
    """A URL nothing listens at: a proxy there can only fail."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{unused.getsockname()[1]}"


def authority(url: str) -> str:
    return httpx.URL(url).netloc.decode()


# --- a private certificate authority ----------------------------------------------------------


async def test_a_private_ca_is_trusted_only_when_its_file_is_set(
    kind: str, tls_url: str, ca_file: str
) -> None:
    async with upstream_client(kind, {"GATEWAY_UPSTREAM_CA_FILE": ca_file}) as client:
        response = await client.post(tls_url, content=b"over TLS")
    assert (response.status_code, response.content) == (201, b"over TLS")
    async with upstream_client(kind) as client:
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            await client.get(tls_url)


async def test_a_large_body_over_tls_arrives_whole(
    kind: str, certificate_authority: trustme.CA, ca_file: str
) -> None:
    body = pattern(5 * MB + 7)

    async def media(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-length", b"%d" % len(body)), (b"content-type", b"audio/wav")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for start in range(0, len(body), 100_000):  # in pieces, as a server streams
            piece = body[start : start + 100_000]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with serve(media, tls=certificate_authority.issue_cert("127.0.0.1")) as url:
        async with upstream_client(kind, {"GATEWAY_UPSTREAM_CA_FILE": ca_file}) as client:
            async with client.stream("GET", url) as response:
                chunks = [chunk async for chunk in response.aiter_raw()]
    assert b"".join(chunks) == body
    assert len(chunks) > 1


def test_the_private_ca_is_added_to_certifis_authorities(ca_file: str) -> None:
    certifi_only = tls_context().cert_store_stats()["x509_ca"]
    assert certifi_only > 100  # certifi's bundle, not the system's (or none)
    assert tls_context(ca_file).cert_store_stats()["x509_ca"] == certifi_only + 1


# --- an egress proxy from the environment -----------------------------------------------------


async def test_https_goes_through_the_proxy_in_a_connect_tunnel(
    kind: str, proxy: ForwardProxy, tls_url: str, ca_file: str
) -> None:
    env = {
        "GATEWAY_UPSTREAM_TRUST_ENV": "1",
        "HTTPS_PROXY": proxy.url,
        "GATEWAY_UPSTREAM_CA_FILE": ca_file,
    }
    async with upstream_client(kind, env) as client:
        response = await client.get(f"{tls_url}/path")
    assert response.status_code == 201
    assert proxy.requests == [ProxiedRequest("CONNECT", authority(tls_url), None)]


async def test_http_goes_through_the_proxy_as_an_absolute_url(
    kind: str, proxy: ForwardProxy, plain_url: str
) -> None:
    env = {"GATEWAY_UPSTREAM_TRUST_ENV": "1", "http_proxy": proxy.url}
    async with upstream_client(kind, env) as client:
        response = await client.get(f"{plain_url}/path?q=1")
    assert response.status_code == 201
    assert proxy.requests == [ProxiedRequest("GET", f"{plain_url}/path?q=1", None)]


async def test_the_proxy_gets_the_credentials_in_its_url(
    kind: str, proxy: ForwardProxy, plain_url: str, tls_url: str, ca_file: str
) -> None:
    with_credentials = proxy.url.replace("http://", "http://egress:s%40cret@")
    env = {
        "GATEWAY_UPSTREAM_TRUST_ENV": "1",
        "HTTP_PROXY": with_credentials,
        "HTTPS_PROXY": with_credentials,
        "GATEWAY_UPSTREAM_CA_FILE": ca_file,
    }
    async with upstream_client(kind, env) as client:
        assert (await client.get(plain_url)).status_code == 201
        assert (await client.get(tls_url)).status_code == 201
    basic = "Basic " + base64.b64encode(b"egress:s@cret").decode()
    assert [(r.method, r.authorization) for r in proxy.requests] == [
        ("GET", basic),
        ("CONNECT", basic),
    ]


async def test_no_proxy_hosts_are_reached_directly(
    kind: str, proxy: ForwardProxy, plain_url: str
) -> None:
    env = {"GATEWAY_UPSTREAM_TRUST_ENV": "1", "HTTP_PROXY": refused_url()}
    async with upstream_client(kind, env) as client:  # the control: the proxy is used
        with pytest.raises(httpx.ConnectError):
            await client.get(plain_url)
    for no_proxy in ("127.0.0.1", "localhost,.127.0.0.1", authority(plain_url), "*"):
        async with upstream_client(kind, {**env, "NO_PROXY": no_proxy}) as client:
            assert (await client.get(plain_url)).status_code == 201, no_proxy
    async with upstream_client(kind, {**env, "NO_PROXY": "127.0.0.1:1"}) as client:  # another port
        with pytest.raises(httpx.ConnectError):
            await client.get(plain_url)


async def test_without_trust_env_the_proxy_variables_are_ignored(kind: str, plain_url: str) -> None:
    env = {"HTTP_PROXY": refused_url(), "HTTPS_PROXY": refused_url()}
    async with upstream_client(kind, env) as client:
        assert (await client.get(plain_url)).status_code == 201


async def test_a_provider_is_reached_through_the_proxy_from_the_gateway(
    kind: str, proxy: ForwardProxy
) -> None:
    sandbox_app = create_sandbox_app(DEMO)
    sandbox = sandbox_app.state.sandbox
    rid = sandbox.sample_ids()["twilio"]
    with serve(sandbox_app) as url:
        env = {**sandbox_env(DEMO, url), "GATEWAY_UPSTREAM_TRUST_ENV": "1", "HTTP_PROXY": proxy.url}
        settings = Settings.from_env(env)
        async with gateway_client(settings, transport(kind, env)) as client:
            query = "query($id: ID!) { recording(provider: TWILIO, id: $id) { id } }"
            body = await graphql(client, query, {"id": rid})
    assert body["data"]["recording"]["id"] == rid
    (relayed,) = proxy.requests
    assert relayed.method == "GET"
    assert relayed.target.startswith(f"{url}/2010-04-01/Accounts/")
