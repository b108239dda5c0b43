"""The response cache: whole answers of queries, kept per tenant, scopes and request, and
served from their bytes (``answer``), in the cache backend with a tag index per recording
for purging (``store``)."""

from app.responses.store import ResponseCache, Stored

__all__ = ["ResponseCache", "Stored"]
