"""The Responses stream's fixed events: ids and usage written as before, at any count."""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.proxy.sse import Usage
from driftgate.proxy.translate import responses_events as fixed
from driftgate.proxy.translate.responses_response import _ID_PREFIX, new_id, usage_json


def test_ids_count_on_in_their_format_across_the_cached_high_digits() -> None:
    """Each id is the prefix, the process's 16 hex digits and the next count's 16, also where
    the count's high digits change (every 256 ids): none repeats, none goes back."""
    ids = [new_id("msg_") for _ in range(700)]
    first = int(ids[0][-16:], 16)
    assert ids == [f"msg_{_ID_PREFIX}{first + k:016x}" for k in range(700)]
    assert all(re.fullmatch(r"msg_[0-9a-f]{32}", i) for i in ids)
    assert new_id("resp_").startswith("resp_" + _ID_PREFIX)


counts = st.integers(-(2**64), 2**65)


@settings(max_examples=300, deadline=None)
@given(st.builds(Usage, counts, counts, counts, counts, counts))
def test_usage_bytes_are_what_orjson_writes_or_raise_as_it_does(usage: Usage) -> None:
    try:
        expected = orjson.dumps(usage_json(usage))
    except orjson.JSONEncodeError:
        with pytest.raises(orjson.JSONEncodeError):
            fixed.usage_bytes(usage)
        return
    assert fixed.usage_bytes(usage) == expected


@pytest.mark.parametrize(
    "usage",
    [Usage(2**63, 0), Usage(-1, 0), Usage(2**64 - 1, 0), Usage(0, 0, 0, 0, -(2**63))],
)
def test_usage_bytes_at_the_edges_of_what_orjson_writes(usage: Usage) -> None:
    assert fixed.usage_bytes(usage) == orjson.dumps(usage_json(usage))


def test_usage_bytes_past_what_orjson_writes_raise() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        fixed.usage_bytes(Usage(2**64, 0))
