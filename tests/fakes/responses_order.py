"""The documented Responses streaming order, as a checker the tests run over real event streams."""

from __future__ import annotations

import itertools
from typing import Any

TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_DELTAS = {
    "response.output_text.delta": "message",
    "response.function_call_arguments.delta": "function_call",
    "response.custom_tool_call_input.delta": "custom_tool_call",
    "response.reasoning_summary_text.delta": "reasoning",
}


def check_order(events: list[dict[str, Any]]) -> None:
    """Raise AssertionError where `events` (decoded data objects) break the documented order."""
    assert events, "no events"
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created", kinds[:2]
    terminal = [i for i, k in enumerate(kinds) if k in TERMINAL]
    assert terminal == [len(kinds) - 1], f"one terminal event, last: {kinds}"
    if kinds[-1] != "response.failed":
        assert kinds[1] == "response.in_progress", kinds[:2]
    numbers = [e["sequence_number"] for e in events]
    assert all(b > a for a, b in itertools.pairwise(numbers)), numbers
    added: dict[str, dict[str, Any]] = {}  # item id -> item as added
    done: list[str] = []
    parts_open: set[str] = set()
    summary_open: set[str] = set()
    for e in events[1:-1]:
        kind = e["type"]
        if kind == "response.output_item.added":
            item = e["item"]
            assert item["id"] not in added, f"item {item['id']} added twice"
            assert e["output_index"] == len(added), f"output_index {e['output_index']} out of order"
            added[item["id"]] = item
            continue
        item_id = e["item"]["id"] if kind == "response.output_item.done" else e.get("item_id")
        if item_id is None:
            continue  # response.in_progress and the like
        assert item_id in added, f"{kind} for item {item_id} that was never added"
        assert item_id not in done, f"{kind} for item {item_id} after its output_item.done"
        if kind in _DELTAS:
            assert added[item_id]["type"] == _DELTAS[kind], f"{kind} on a {added[item_id]['type']}"
        if kind == "response.content_part.added":
            parts_open.add(item_id)
        elif kind in ("response.output_text.delta", "response.output_text.done"):
            assert item_id in parts_open, f"{kind} before content_part.added"
        elif kind == "response.content_part.done":
            parts_open.discard(item_id)
        elif kind == "response.reasoning_summary_part.added":
            summary_open.add(item_id)
        elif kind == "response.reasoning_summary_text.delta":
            assert item_id in summary_open, "summary delta before reasoning_summary_part.added"
        elif kind == "response.output_item.done":
            assert item_id not in parts_open, "output_item.done with its content part still open"
            done.append(item_id)
    final = events[-1]["response"]
    if kinds[-1] != "response.failed":
        assert set(done) == set(added), "every added item is done before the end"
        assert [i["id"] for i in final["output"]] == done
        assert final["usage"] is not None
    assert final["status"] == {"response.completed": "completed", "response.incomplete": "incomplete",
                               "response.failed": "failed"}[kinds[-1]]  # fmt: skip
