"""Rate-limit headers parsed into a record's fields."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.observe.ratelimit import parse_ratelimit

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def test_anthropic_headers() -> None:
    limits = parse_ratelimit(
        {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "49",
            "anthropic-ratelimit-requests-reset": "2023-11-14T22:13:50Z",
            "anthropic-ratelimit-tokens-limit": "40000",
            "anthropic-ratelimit-tokens-remaining": "39000",
            "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:30Z",
            "anthropic-ratelimit-input-tokens-limit": "30000",
            "content-type": "application/json",
            "retry-after": "12",
        },
        NOW,
    )
    assert (limits.requests_limit, limits.requests_remaining) == (50, 49)
    assert (limits.tokens_limit, limits.tokens_remaining) == (40000, 39000)
    assert limits.reset_s == pytest.approx(10.0)  # the soonest reset
    assert limits.retry_after_s == 12.0
    raw = json.loads(limits.raw or "{}")
    assert raw["anthropic-ratelimit-input-tokens-limit"] == "30000"
    assert "content-type" not in raw


def test_openai_headers_with_durations() -> None:
    limits = parse_ratelimit(
        {
            "x-ratelimit-limit-requests": "10000",
            "x-ratelimit-remaining-requests": "9990",
            "x-ratelimit-reset-requests": "1m30s",
            "x-ratelimit-limit-tokens": "200000",
            "x-ratelimit-remaining-tokens": "150000",
            "x-ratelimit-reset-tokens": "250ms",
        },
        NOW,
    )
    assert (limits.requests_limit, limits.requests_remaining) == (10000, 9990)
    assert (limits.tokens_limit, limits.tokens_remaining) == (200000, 150000)
    assert limits.reset_s == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("value", "seconds"), [("6m0s", 360.0), ("1h2m3s", 3723.0), ("1.5s", 1.5), ("7", 7.0)]
)
def test_durations(value: str, seconds: float) -> None:
    limits = parse_ratelimit({"x-ratelimit-reset-requests": value}, NOW)
    assert limits.reset_s == pytest.approx(seconds)


def test_nothing_or_garbage_leaves_fields_empty() -> None:
    empty = parse_ratelimit(None, NOW)
    assert empty.raw is None and empty.requests_limit is None
    junk = parse_ratelimit(
        {"x-ratelimit-limit-requests": "lots", "x-ratelimit-reset-tokens": "soon"}, NOW
    )
    assert junk.requests_limit is None and junk.reset_s is None and junk.raw is not None


def test_answers_without_rate_limit_headers_share_one_empty_result_that_stays_empty() -> None:
    plain = parse_ratelimit({"content-type": "text/event-stream", "request-id": "r1"}, NOW)
    assert plain is parse_ratelimit(None, NOW) is parse_ratelimit({}, NOW)
    limited = parse_ratelimit({"x-ratelimit-limit-requests": "50", "retry-after": "2"}, NOW)
    assert limited is not plain and limited.requests_limit == 50
    fields = ("requests_limit", "requests_remaining", "tokens_limit", "tokens_remaining",
              "reset_s", "retry_after_s", "raw")  # fmt: skip
    assert all(getattr(plain, name) is None for name in fields)


def test_names_seen_without_limits_do_not_hide_a_limit_that_comes_with_them() -> None:
    """Names known to carry no limit are skipped in one pass; any other name is read."""
    plain = CIMultiDictProxy(CIMultiDict([("Content-Type", "text/plain"), ("Server", "x")]))
    assert parse_ratelimit(plain, NOW) is parse_ratelimit(plain, NOW)  # the names now known
    with_limit = CIMultiDict(plain)
    with_limit.add("X-RateLimit-Remaining-Tokens", "7")
    with_limit.add("Server", "again")  # a repeated known name changes nothing
    got = parse_ratelimit(CIMultiDictProxy(with_limit), NOW)
    assert got.tokens_remaining == 7
    assert json.loads(got.raw or "{}") == {"x-ratelimit-remaining-tokens": "7"}
