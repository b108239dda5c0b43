"""Media redirects go only where the policy allows (``app.providers.redirects``), for every adapter.

The gateway runs over the sandbox (``httpx.ASGITransport``) inside a ``Network`` that also
plays DNS and the invented external hosts, so nothing leaves the process and a refused hop
can be shown never to have been requested. Faults are the sandbox's: a provider's media
URL answers a 307 to wherever the test says.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from starlette.applications import Starlette

from app.errors import ConfigError
from app.models import Provider
from app.providers.redirects import host_matches, is_public
from app.sandbox import Sandbox, SandboxConfig
from app.settings import Settings
from tests.media.support import mint
from tests.providers.network import Network, Wire
from tests.support import gateway_client, sandbox_env

pytestmark = pytest.mark.anyio

AUDIO = b"\xff\xf3" + bytes(range(256)) * 4
PUBLIC = ["151.101.2.133"]  # a public address, never connected to: the Network answers
# Bird's sandbox media link is the sandbox's own; the fault answers the first media request.
FAULTED = {Provider.TWILIO: "twilio", Provider.SIGNALWIRE: "signalwire", Provider.BIRD: "bird"}


def audio(request: httpx.Request) -> httpx.Response:
    headers = {"content-type": "audio/mpeg", "content-length": str(len(AUDIO))}
    return httpx.Response(200, stream=Wire(AUDIO), headers=headers)


@dataclass
class Rig:
    client: httpx.AsyncClient
    network: Network
    sandbox: Sandbox

    async def refused(self, provider: Provider, location: str) -> httpx.Response:
        """The media request whose provider hop redirects to ``location``."""
        rid = self.sandbox.sample_ids()[provider.value]
        url = await mint(self.client, provider, rid)
        self.sandbox.faults.redirect(FAULTED[provider], location)
        return await self.client.get(url)

    def requested_hosts(self) -> set[str]:
        return {request.url.host for request in self.network.seen}


def rig_settings(config: SandboxConfig, base_url: str, **env: str) -> Settings:
    return Settings.from_env(sandbox_env(config, base_url) | env)


@pytest.fixture
async def rig(sandbox_config: SandboxConfig, sandbox_app: Starlette) -> AsyncIterator[Rig]:
    network = Network(
        httpx.ASGITransport(app=sandbox_app),
        hosts={"bucket.s3.amazonaws.com": audio, "cdn.example.com": audio},
        dns={
            "bucket.s3.amazonaws.com": PUBLIC,
            "cdn.example.com": PUBLIC,
            "internal.example.com": ["10.1.2.3"],
            "sneaky.example.com": ["203.0.113.9", "127.0.0.1"],
            "metadata.example.com": ["169.254.169.254"],
            "v6.example.com": ["::ffff:192.168.1.1"],
        },
    )
    env = {"GATEWAY_MEDIA_REDIRECT_HOSTS": "*.example.com"}
    settings = rig_settings(sandbox_config, "http://sandbox.test", **env)
    async with gateway_client(settings, network) as client:
        sandbox: Sandbox = sandbox_app.state.sandbox
        yield Rig(client, network, sandbox)


def assert_bad_response(response: httpx.Response) -> None:
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "PROVIDER_BAD_RESPONSE"


REFUSED = {
    "loopback-other-port": ("http://127.0.0.1:9/a.mp3", "127.0.0.1"),
    "loopback-https-literal": ("https://127.0.0.1:8443/a.mp3", "127.0.0.1"),
    "cloud-metadata": ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    "cloud-metadata-https": ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    "ipv6-literal": ("https://[::1]/a.mp3", "::1"),
    "http-allowed-name": ("http://cdn.example.com/a.mp3?sig=secret", "cdn.example.com"),
    "not-on-the-list": ("https://evil.invalid/a.mp3", "evil.invalid"),
    "resolves-private": ("https://internal.example.com/a.mp3", "internal.example.com"),
    "resolves-partly-loopback": ("https://sneaky.example.com/a.mp3", "sneaky.example.com"),
    "resolves-link-local": ("https://metadata.example.com/a.mp3", "metadata.example.com"),
    "resolves-mapped-private": ("https://v6.example.com/a.mp3", "v6.example.com"),
    "does-not-resolve": ("https://nowhere.example.com/a.mp3", "nowhere.example.com"),
}


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_refused_redirect_is_never_requested(
    rig: Rig, provider: Provider, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    location, host = REFUSED[case]
    caplog.set_level(logging.WARNING, logger="app.providers")
    response = await rig.refused(provider, location)
    assert_bad_response(response)
    assert host not in rig.requested_hosts(), "no connection to a refused host"
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("app.providers")]
    assert any(repr(host) in line for line in logged), logged
    assert not any("sig=" in line or "meta-data" in line for line in logged), "host only"


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_healthy_media_still_flows_after_a_refusal(rig: Rig, provider: Provider) -> None:
    assert_bad_response(await rig.refused(provider, "http://169.254.169.254/"))
    for other in Provider:
        url = await mint(rig.client, other, rig.sandbox.sample_ids()[other.value])
        response = await rig.client.get(url)
        assert response.status_code == 200, (other, response.text)


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_an_allowed_https_host_is_followed(rig: Rig, provider: Provider) -> None:
    response = await rig.refused(provider, "https://cdn.example.com/media/a.mp3?sig=1")
    assert response.status_code == 200 and response.content == AUDIO
    assert "cdn.example.com" in rig.network.resolved
    hop = [r for r in rig.network.seen if r.url.host == "cdn.example.com"]
    assert len(hop) == 1 and "authorization" not in hop[0].headers


async def test_birds_default_list_takes_s3(rig: Rig) -> None:
    location = "https://bucket.s3.amazonaws.com/o.mp3?X-Amz-Signature=abc"
    response = await rig.refused(Provider.BIRD, location)
    assert response.status_code == 200 and response.content == AUDIO


@pytest.mark.parametrize("provider", [Provider.TWILIO, Provider.SIGNALWIRE], ids=str)
async def test_s3_is_not_on_every_list_by_extension(rig: Rig, provider: Provider) -> None:
    """The extension adds to the provider's own list; a host on none is refused."""
    assert_bad_response(await rig.refused(provider, "https://storage.googleapis.com/a.mp3"))


@pytest.mark.parametrize("provider", list(Provider), ids=lambda p: p.value)
async def test_a_loop_is_refused(rig: Rig, provider: Provider) -> None:
    """provider -> a -> b -> a: refused when a comes round again, before asking it twice."""
    cycle = {
        "a.example.com": "https://b.example.com/m.mp3",
        "b.example.com": "https://a.example.com/m.mp3",
    }

    def hop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": cycle[request.url.host]})

    rig.network.hosts |= dict.fromkeys(cycle, hop)
    rig.network.dns |= dict.fromkeys(cycle, PUBLIC)
    response = await rig.refused(provider, "https://a.example.com/m.mp3")
    assert_bad_response(response)
    hosts = [r.url.host for r in rig.network.seen if r.url.host in cycle]
    assert hosts == ["a.example.com", "b.example.com"]


async def test_hops_are_bounded(sandbox_config: SandboxConfig, sandbox_app: Starlette) -> None:
    chain = {f"hop{n}.example.com": f"https://hop{n + 1}.example.com/a.mp3" for n in range(6)}

    def hop(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"location": chain[request.url.host]})

    network = Network(
        httpx.ASGITransport(app=sandbox_app),
        hosts=dict.fromkeys(chain, hop),
        dns=dict.fromkeys(chain, PUBLIC),
    )
    settings = rig_settings(
        sandbox_config, "http://sandbox.test", GATEWAY_MEDIA_REDIRECT_HOSTS="*.example.com"
    )
    async with gateway_client(settings, network) as client:
        sandbox: Sandbox = sandbox_app.state.sandbox
        url = await mint(client, Provider.TWILIO, sandbox.sample_ids()["twilio"])
        sandbox.faults.redirect("twilio", "https://hop0.example.com/a.mp3")
        response = await client.get(url)
    assert_bad_response(response)
    assert [r.url.host for r in network.seen if r.url.host.startswith("hop")] == [
        "hop0.example.com",
        "hop1.example.com",
        "hop2.example.com",
    ], "three redirects followed (provider -> hop0 -> hop1 -> hop2), the fourth refused"


async def test_another_port_of_the_base_host_is_followed(
    sandbox_config: SandboxConfig, sandbox_app: Starlette
) -> None:
    """The base URL's own scheme and host (a sandbox on loopback) is trusted, any port:
    no allow-list, no address check, and its requests carry no resolution."""
    network = Network(httpx.ASGITransport(app=sandbox_app))
    settings = rig_settings(sandbox_config, "http://127.0.0.1:8001")
    sandbox: Sandbox = sandbox_app.state.sandbox
    async with gateway_client(settings, network) as client:
        for provider in Provider:
            rid = sandbox.sample_ids()[provider.value]
            url = await mint(client, provider, rid)
            sandbox.faults.redirect(FAULTED[provider], "http://127.0.0.1:8002/elsewhere")
            response = await client.get(url)
            # The hop is followed (to the sandbox, which has no such path): a provider 404.
            assert response.status_code == 404, response.text
            assert network.seen[-1].url.port == 8002
    assert network.resolved == []


@pytest.mark.parametrize(
    ("host", "pattern", "matches"),
    [
        ("api.twilio.com", "api.twilio.com", True),
        ("API.Twilio.com.", "api.twilio.com", True),
        ("media.twilio.com", "*.twilio.com", True),
        ("twilio.com", "*.twilio.com", False),
        ("eviltwilio.com", "*.twilio.com", False),
        ("twilio.com.evil.net", "*.twilio.com", False),
    ],
)
def test_host_patterns(host: str, pattern: str, matches: bool) -> None:
    assert host_matches(host, pattern) is matches


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("151.101.2.133", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("192.168.0.1", False),
        ("169.254.169.254", False),
        ("224.0.0.1", False),
        ("0.0.0.0", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:10.0.0.1", False),
    ],
)
def test_internal_addresses(address: str, public: bool) -> None:
    assert is_public(address) is public


@pytest.mark.parametrize("value", ["http://x.com", "*", "a..b", "10.0.0.1", "*.*.com", "x y"])
def test_bad_redirect_host_patterns_are_config_errors(
    sandbox_config: SandboxConfig, value: str
) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_MEDIA_REDIRECT_HOSTS"):
        rig_settings(sandbox_config, "http://sandbox.test", GATEWAY_MEDIA_REDIRECT_HOSTS=value)


def test_redirect_hosts_are_read(sandbox_config: SandboxConfig) -> None:
    settings = rig_settings(
        sandbox_config,
        "http://sandbox.test",
        GATEWAY_MEDIA_REDIRECT_HOSTS=" media.Example.com, *.cdn.example.net ,",
    )
    assert settings.upstream.media_redirect_hosts == ("media.example.com", "*.cdn.example.net")
