"""What ``recordingStats`` costs: GATEWAY_STATS_MAX_PAGES pages per provider it reads (the
setting, and the estimate)."""

from __future__ import annotations

from typing import Any

import graphql
import pytest

from app.errors import ConfigError
from app.schema.cost import estimate
from app.settings import Settings

PAGES = 40


def cost(query: str, variables: dict[str, Any] | None = None, providers: int = 3) -> int:
    return estimate(
        graphql.parse(query), None, variables, providers=providers, stats_max_pages=PAGES
    )


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [
        ("{ recordingStats { count } }", None, 3 * PAGES),
        ("{ recordingStats(groupBy: [DAY]) { key { day } count } }", None, 3 * PAGES),
        ("{ recordingStats(filter: {providers: [BIRD]}) { count } }", None, PAGES),
        ("{ recordingStats(filter: {providers: [BIRD, BIRD, TWILIO]}) { count } }", None, 80),
        ("{ a: recordingStats { count } b: recordingStats { count } }", None, 6 * PAGES),
        (
            "query Q($f: RecordingFilter) { recordingStats(filter: $f) { count } }",
            {"f": {"providers": ["SIGNALWIRE"]}},
            PAGES,
        ),
        (
            "query Q($f: RecordingFilter) { recordingStats(filter: $f) { count } }",
            {"f": {"callId": "CA1"}},
            3 * PAGES,
        ),
        (
            "query Q { ...S ...S } fragment S on Query { recordingStats { count } }",
            None,
            6 * PAGES,
        ),
        ("query Q($no: Boolean!) { recordingStats @skip(if: $no) { count } }", {"no": True}, 0),
        ("{ recordingStats { cost { amount } } recordings(first: 5) { __typename } }", None, 135),
    ],
)
def test_stats_cost_their_pages(
    query: str, variables: dict[str, Any] | None, expected: int
) -> None:
    assert cost(query, variables) == expected


def test_the_providers_configured_count_when_none_is_chosen() -> None:
    assert cost("{ recordingStats { count } }", providers=1) == PAGES


def test_the_pages_setting() -> None:
    assert Settings.from_env({}).stats_max_pages == 100
    assert Settings.from_env({"GATEWAY_STATS_MAX_PAGES": "7"}).stats_max_pages == 7
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="GATEWAY_STATS_MAX_PAGES"):
            Settings.from_env({"GATEWAY_STATS_MAX_PAGES": bad})
