"""The response cache across two gateway processes over one real redis-server: an answer one
replica stored is a hit on the other, and a change of a recording seen by either purges it
for both. The deployment (two ``python -m app serve`` processes, a sandbox served from this
process, Redis with a password) is the one ``tests/access/test_replicas.py`` builds."""

from __future__ import annotations

import dataclasses

from redis import Redis

from app.models import Provider
from tests.access.test_replicas import (  # noqa: F401  (fixtures, used by name)
    READER,
    Deployment,
    deployment,
    empty_redis,
    post,
    recording_query,
    replica_db,
    replica_redis,
)
from tests.listing.support import LIST_QUERY
from tests.support import upstream_count


def test_a_change_seen_by_one_replica_purges_the_answer_on_both(
    deployment: Deployment,  # noqa: F811
    replica_db: Redis,  # noqa: F811
) -> None:
    sandbox = deployment.sandbox
    rid = sandbox.sample_ids()["twilio"]
    record = sandbox.dataset.get("twilio", rid)
    assert record is not None
    query = recording_query(Provider.TWILIO, rid)
    with deployment.one.client(READER) as one, deployment.two.client(READER) as two:
        stored = post(one, *query)
        assert stored.headers["x-cache"] == "MISS", stored.text
        asked = upstream_count(sandbox, rid)
        shared = post(two, *query)
        assert shared.headers["x-cache"] == "HIT" and shared.content == stored.content
        assert upstream_count(sandbox, rid) == asked
        assert replica_db.keys("rg:responses:v1:answer:*") != []

        sandbox.dataset.put(dataclasses.replace(record, duration=record.duration + 7))
        assert post(two, *query).headers["x-cache"] == "HIT"  # nothing told it yet
        listing = post(one, LIST_QUERY, {"first": 100, "filter": {"providers": ["TWILIO"]}})
        assert rid in listing.text, listing.text  # replica one stores the new state: a purge

        changed = post(two, *query)
        again = post(one, *query)
    assert changed.headers["x-cache"] == "MISS"
    assert changed.json()["data"]["recording"]["durationSeconds"] == record.duration + 7
    assert again.headers["x-cache"] == "HIT" and again.content == changed.content
