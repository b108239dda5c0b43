"""Which egress proxy, if any, an upstream request goes through.

With ``GATEWAY_UPSTREAM_TRUST_ENV=1``, ``HTTPS_PROXY`` and ``HTTP_PROXY`` name the proxy
for URLs of each scheme, and ``NO_PROXY`` the hosts reached directly (``app.settings``
reads them from the environment). ``NO_PROXY`` is read as curl and ``requests`` read it:
comma-separated names, each matching that host and every name under it (a leading dot
changes nothing), an entry with a port only that port, ``*`` every host. IP addresses
match as written (no CIDR ranges). Both transports ask here, per request: aiohttp takes a
proxy per request, httpx's transport one per pool (``app.upstream.httpx_transport``).

The rule is written out here rather than borrowed from ``urllib.request``: the function
that takes a ``NO_PROXY`` value there is undocumented, and ``proxy_bypass`` reads the
process environment at every call (and the system's settings on macOS and Windows).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.settings import UpstreamSettings


class Proxies:
    """Proxy URLs by URL scheme, and the hosts that bypass them."""

    def __init__(
        self, by_scheme: Mapping[str, str] | None = None, no_proxy: str | None = None
    ) -> None:
        self._by_scheme = dict(by_scheme or {})
        names = (name.strip().lower().lstrip(".") for name in (no_proxy or "").split(","))
        self._direct = frozenset(name for name in names if name)

    @classmethod
    def from_settings(cls, settings: UpstreamSettings) -> Proxies:
        by_scheme = {scheme: str(url) for scheme, url in settings.proxies.items()}
        return cls(by_scheme, settings.no_proxy)

    @property
    def urls(self) -> set[str]:
        """Every proxy a request may go through."""
        return set(self._by_scheme.values())

    def for_url(self, url: httpx.URL) -> str | None:
        """The proxy for ``url``, or None to connect directly."""
        proxy = self._by_scheme.get(url.scheme)
        if proxy is None or self._bypasses(url):
            return None
        return proxy

    def for_address(self, url: str) -> str | None:
        """``for_url`` of a URL string, parsed only when some proxy is configured."""
        return self.for_url(httpx.URL(url)) if self._by_scheme else None

    def _bypasses(self, url: httpx.URL) -> bool:
        if not self._direct:
            return False
        if "*" in self._direct:
            return True
        host = url.host.lower()
        port = url.port or {"http": 80, "https": 443}[url.scheme]
        hosts = {host, f"{host}:{port}"}
        for name in self._direct:
            if name in hosts or any(each.endswith(f".{name}") for each in hosts):
                return True
        return False
