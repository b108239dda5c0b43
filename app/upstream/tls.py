"""The one TLS context every upstream connection uses, whichever the transport.

Building a context loads a CA bundle (tens of milliseconds), so the gateway builds one at
start: certifi's authorities (the same on every machine, whatever the system has), plus
the private ones of ``GATEWAY_UPSTREAM_CA_FILE`` when set (an egress proxy that
re-signs TLS, a provider stand-in with an internal certificate). Certificates and host
names are verified, as ``ssl.create_default_context`` does.
"""

from __future__ import annotations

import ssl

import certifi


def tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """certifi's authorities, and those of ``ca_file`` (a PEM file) when given."""
    context = ssl.create_default_context(cafile=certifi.where())
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    return context
