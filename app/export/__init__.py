"""``GET /export/recordings.csv`` and ``.ndjson``: the ``recordings`` listing as one flat file.

- ``params``: the query parameters, read into the same filter as ``recordings``' ``filter``;
- ``rows``: one ``models.Recording`` -> one flat row (the columns and their formats);
- ``writers``: rows -> CSV (RFC 4180) or NDJSON bytes, and how each format ends on a failure;
- ``stream``: the walk (``app.listing.merge.runs``) with read-ahead, a deadline per page and
  the tenant's rate limit charged per upstream request;
- ``route``: the HTTP endpoint (authentication, refusals, streaming, a cut on failure);
- ``cli``: ``recording-gateway export``, a client of the endpoint.
"""
