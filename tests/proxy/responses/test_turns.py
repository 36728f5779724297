"""What a stored turn keeps of a Response object: its id and items, and the items' bytes a streamed
answer's encoder already wrote, filed as they are."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest

from driftgate.proxy.respond.responder import turn_output
from driftgate.proxy.responses.store import DB_NAME, Conversations
from driftgate.proxy.responses.turns import Output, items_blob, output_of
from driftgate.proxy.sse import Usage
from driftgate.proxy.translate.ir import (
    ArgumentsDelta,
    BlockStart,
    BlockStop,
    StreamDone,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
)
from driftgate.proxy.translate.responses_stream import ResponsesEncoder

REQUEST = {"model": "m", "input": "hi", "tools": [{"type": "custom", "name": "apply_patch"}]}
OWN = [{"type": "message", "role": "user", "content": 'hi \u00e9 "q"'}]
ITEM = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"text": "x\n"}]}


def streamed(events: list[StreamEvent]) -> ResponsesEncoder:
    encoder = ResponsesEncoder("m", Usage(), True, lambda: 1_000.0, REQUEST)
    for ev in events:
        encoder.encode(ev)
    return encoder


# Every kind of output item the encoder finishes: reasoning (with a signature), a message with
# text JSON must escape, a function call, a custom tool call, and a message that streamed nothing.
EVERY_KIND: list[StreamEvent] = [
    StreamStart(None, Usage()),
    BlockStart(0, "thinking"),
    ThinkingDelta(0, text='let me "think"'),
    ThinkingDelta(0, signature="sig=="),
    BlockStop(0),
    BlockStart(1, "text"),
    TextDelta(1, 'hello \u2028 "world"\n'),
    TextDelta(1, " again"),
    BlockStop(1),
    BlockStart(2, "tool_call", "call_a", "get_weather"),
    ArgumentsDelta(2, '{"city":'),
    ArgumentsDelta(2, '"Paris"}'),
    BlockStop(2),
    BlockStart(3, "tool_call", "call_b", "apply_patch"),
    ArgumentsDelta(3, '{"input":"*** Begin Patch\\n"}'),
    BlockStop(3),
    BlockStart(4, "text"),
    BlockStop(4),
    StreamEnd("stop", Usage(input_tokens=3, output_tokens=5)),
    StreamDone(),
]


@pytest.mark.parametrize(
    ("own", "items"),
    [([], []), (OWN, []), ([], [ITEM]), (OWN, [ITEM]), (OWN + OWN, [ITEM, ITEM])],
)
def test_a_blob_from_the_items_bytes_equals_orjsons_of_the_items(
    own: list[dict[str, Any]], items: list[dict[str, Any]]
) -> None:
    raw = [orjson.dumps(i) for i in items]
    expected = orjson.dumps(own + items)
    assert items_blob(own, Output("resp_1", items, raw)) == expected
    assert items_blob(own, Output("resp_1", items)) == expected


def test_a_response_dict_gives_its_id_and_dict_items() -> None:
    out = output_of({"id": "resp_1", "output": [ITEM, "junk"], "status": "completed"})
    assert out == Output("resp_1", [ITEM])
    assert output_of({"output": [ITEM]}) is None
    kept = Output("resp_2", [ITEM], [orjson.dumps(ITEM)])
    assert output_of(kept) is kept


def test_the_encoders_item_bytes_are_its_items_as_orjson_writes_them() -> None:
    encoder = streamed(EVERY_KIND)
    assert encoder.succeeded
    items = encoder.response["output"]
    assert [i["type"] for i in items] == [
        "reasoning", "message", "function_call", "custom_tool_call", "message",
    ]  # fmt: skip
    out = turn_output(encoder)
    assert out.response_id == encoder.response_id == encoder.response["id"]
    assert out.items == items
    assert out.raw == [orjson.dumps(i) for i in items]


def test_a_streamed_turn_filed_from_its_bytes_resolves_after_a_restart(tmp_path: Path) -> None:
    """The file holds what it held when the store serialised the Response object's items."""
    encoder = streamed(EVERY_KIND)
    items = encoder.response["output"]
    conv = Conversations(tmp_path / DB_NAME)
    expanded = conv.expand({"model": "m", "input": OWN})
    conv.remember(expanded, turn_output(encoder))
    conv.close()
    db = sqlite3.connect(tmp_path / DB_NAME)
    (blob,) = db.execute("SELECT items FROM turns WHERE id = ?", (encoder.response_id,)).fetchone()
    db.close()
    assert blob == orjson.dumps(OWN + items)

    again = Conversations(tmp_path / DB_NAME)
    try:
        later = again.expand({"input": "next", "previous_response_id": encoder.response_id})
        assert later.body["input"][:-1] == OWN + items
        ref = again.expand({"input": [{"type": "item_reference", "id": items[1]["id"]}]})
        assert ref.body["input"] == [items[1]]
    finally:
        again.close()


def test_a_streamed_turn_with_store_false_is_not_kept() -> None:
    encoder = streamed(EVERY_KIND)
    conv = Conversations(None)
    conv.remember(conv.expand({"input": "x", "store": False}), turn_output(encoder))
    with pytest.raises(Exception, match="not found"):
        conv.expand({"input": "y", "previous_response_id": encoder.response_id})
