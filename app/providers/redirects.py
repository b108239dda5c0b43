"""Where a provider's media redirect may lead: the one policy every adapter's media fetch uses.

A provider answers a media URL with a 3xx to its CDN or object store (Bird: a presigned S3
link; Twilio: its media hosts and S3). The gateway follows that hop by hand and relays the
body to its client, so a redirect the provider (or anyone on its path) chooses must not turn
the gateway into a proxy into its own network: a hop is followed only

- to ``https``, or to the configured base URL's own scheme and host (a sandbox on loopback);
- to a host on the provider's allow-list (``DEFAULT_HOSTS``, extended by
  ``GATEWAY_MEDIA_REDIRECT_HOSTS``; ``*.example.com`` matches the names under it);
- never to an IP literal, nor to a name that resolves to a loopback, private, link-local,
  multicast, reserved or unspecified address (except the base URL's own host). A name that
  cannot be resolved within ``RESOLVE_TIMEOUT`` is refused too.

The name is resolved with the event loop's ``getaddrinfo`` unless the upstream transport
plays the network itself (``NameResolver``: a test transport answering for hosts that are
not real), so a test never asks a real DNS. Resolving here and connecting later leaves a
window for a name that changes its answer in between (DNS rebinding); the allow-list is the
main defence, the resolution check the second.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from app.models import Provider

#: Redirects a media download may take (Bird's 307 to S3, a Twilio CDN hop).
MAX_HOPS = 3
#: Seconds a redirect target's name may take to resolve before the hop is refused.
RESOLVE_TIMEOUT = 2.0

#: Each provider's own media hosts. Twilio serves recordings from api.twilio.com and
#: redirects to its media hosts and S3; SignalWire serves them from the space and its
#: storage; Bird redirects to a presigned S3 link.
DEFAULT_HOSTS: dict[Provider, tuple[str, ...]] = {
    Provider.TWILIO: ("api.twilio.com", "*.twilio.com", "*.twiliocdn.com", "*.amazonaws.com"),
    Provider.SIGNALWIRE: ("*.signalwire.com", "*.amazonaws.com"),
    Provider.BIRD: ("*.amazonaws.com",),
}


@runtime_checkable
class NameResolver(Protocol):
    """An upstream transport that plays the network, DNS included (tests)."""

    async def resolve(self, host: str) -> list[str]:
        """The addresses ``host`` has on that network (an OSError if none)."""
        ...


class RedirectRefused(Exception):
    """A hop the policy does not follow; ``str()`` says why, naming the host only."""


def host_matches(host: str, pattern: str) -> bool:
    """``api.twilio.com`` matches itself; ``*.twilio.com`` matches any name under twilio.com."""
    host, pattern = host.lower().rstrip("."), pattern.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def is_public(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved or unspecified addresses."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


async def system_resolve(host: str) -> list[str]:
    """The addresses ``host`` resolves to, by the event loop's ``getaddrinfo``."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class RedirectPolicy:
    """The hops one provider account's media redirects may take."""

    base_url: httpx.URL
    hosts: tuple[str, ...]

    @classmethod
    def build(cls, provider: Provider, base_url: str, extra: Iterable[str] = ()) -> RedirectPolicy:
        return cls(httpx.URL(base_url), DEFAULT_HOSTS[provider] + tuple(extra))

    def is_base(self, url: httpx.URL) -> bool:
        """Whether ``url`` is on the configured base URL's own scheme and host."""
        return url.scheme == self.base_url.scheme and url.host == self.base_url.host

    async def check(self, url: httpx.URL, transport: httpx.AsyncBaseTransport) -> None:
        """Return if a hop to ``url`` may be followed; else raise RedirectRefused."""
        if self.is_base(url):
            return
        host = url.host
        if url.scheme != "https":
            raise RedirectRefused(f"a redirect to {host!r} over {url.scheme}, not https")
        if _is_ip_literal(host):
            raise RedirectRefused(f"a redirect to the IP address {host!r}")
        if not any(host_matches(host, pattern) for pattern in self.hosts):
            raise RedirectRefused(f"a redirect to {host!r}, not one of its media hosts")
        resolve = transport.resolve if isinstance(transport, NameResolver) else system_resolve
        try:
            async with asyncio.timeout(RESOLVE_TIMEOUT):
                addresses = await resolve(host)
        except (OSError, TimeoutError) as exc:
            raise RedirectRefused(f"a redirect to {host!r}, which did not resolve") from exc
        if not addresses or not all(is_public(address) for address in addresses):
            raise RedirectRefused(f"a redirect to {host!r}, which resolves to an internal address")
