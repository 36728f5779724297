"""The fixed events of a translated Responses stream, written from byte templates.

Every stream opens with response.created and response.in_progress, opens and closes a message
item, and ends with response.completed; building a dict for each and serialising it cost most of
a short stream. Each is joined here from prebuilt bytes around its few values, as orjson writes
the same objects (tests/proxy/translate/test_stream_corpus.py holds the bytes to it). Ids are
ASCII letters, digits and `_`: they are written without JSON escaping.
"""

from __future__ import annotations

from typing import Any

import orjson

from driftgate.proxy.sse import Usage
from driftgate.proxy.translate.responses_response import ECHO_DEFAULTS

# Sequence numbers and output indices as bytes; a table lookup costs less than formatting one.
_DIGITS = tuple(str(n).encode() for n in range(1024))
_DIGITS_LEN = len(_DIGITS)


def digits(n: int) -> bytes:
    """`n` as JSON writes it (a count: not negative)."""
    return _DIGITS[n] if n < _DIGITS_LEN else str(n).encode()


_DEFAULT_ECHO = orjson.dumps(ECHO_DEFAULTS)[1:-1]


def echo_bytes(request: dict[str, Any] | None) -> bytes:
    """What a Response object repeats of its request, as orjson writes those keys of `skeleton`."""
    if not request:
        return _DEFAULT_ECHO
    echoed: dict[str, Any] | None = None
    for key in request:  # the keys skeleton() copies, in the defaults' order
        if key in ECHO_DEFAULTS:
            if echoed is None:
                echoed = ECHO_DEFAULTS.copy()
            value = request[key]
            default = ECHO_DEFAULTS[key]
            echoed[key] = default if value is None and default is not None else value
    return _DEFAULT_ECHO if echoed is None else orjson.dumps(echoed)[1:-1]


def response_head(response_id: str, created: int) -> bytes:
    """A Response object's bytes up to its status."""
    return b'{"id":"%b","object":"response","created_at":%d,' % (response_id.encode(), created)


# A Response object's bytes from its status to its model, by its state.
_IN_PROGRESS = (
    b'"status":"in_progress","background":false,"error":null,"incomplete_details":null,"model":'
)
_ENDED = {
    None: b'"status":"completed","background":false,"error":null,"incomplete_details":null,'
    b'"model":',
    "max_output_tokens": b'"status":"incomplete","background":false,"error":null,'
    b'"incomplete_details":{"reason":"max_output_tokens"},"model":',
    "content_filter": b'"status":"incomplete","background":false,"error":null,'
    b'"incomplete_details":{"reason":"content_filter"},"model":',
}


def in_progress(head: bytes, model: bytes, echo: bytes) -> bytes:
    """The Response object of response.created and response.in_progress."""
    return b"".join((head, _IN_PROGRESS, model, b',"output":[],"usage":null,', echo, b"}"))


def ended(
    seq: int,
    head: bytes,
    reason: str | None,
    model: bytes,
    output: list[bytes],
    usage: bytes,
    echo: bytes,
) -> bytes:
    """response.completed (`reason` None) or response.incomplete, sequence number `seq`."""
    kind = _FINAL[b"response.incomplete" if reason else b"response.completed"]
    items = b",".join(output)
    return b"".join((kind, digits(seq), b',"response":', head, _ENDED[reason], model,
                     b',"output":[', items, b'],"usage":', usage, b",", echo, b"}}\n\n"))  # fmt: skip


def failed(
    head: bytes, error: bytes, model: bytes, output: list[bytes], usage: bytes, echo: bytes
) -> bytes:
    """The Response object of response.failed."""
    items = b",".join(output)
    return b"".join((head, b'"status":"failed","background":false,"error":', error,
                     b',"incomplete_details":null,"model":', model, b',"output":[', items,
                     b'],"usage":', usage, b",", echo, b"}"))  # fmt: skip


_USAGE = (
    b'{"input_tokens":%d,"input_tokens_details":{"cached_tokens":%d},"output_tokens":%d,'
    b'"output_tokens_details":{"reasoning_tokens":%d},"total_tokens":%d}'
)


def usage_bytes(usage: Usage) -> bytes:
    """A Responses `usage` object as orjson writes `usage_json(usage)`, at any count.

    orjson refuses integers past 64 bits; JSON has no such limit, and an upstream that reports
    such a count must still get its stream ended, so they are written in full here.
    """
    cached = usage.cache_read_tokens
    prompt = usage.input_tokens + cached + usage.cache_write_tokens
    output = usage.output_tokens
    return _USAGE % (prompt, cached, output, usage.reasoning_tokens, prompt + output)


_CREATED = (
    b'event: response.created\ndata: {"type":"response.created","sequence_number":0,"response":'
)
_STARTED = b'}}\n\nevent: response.in_progress\ndata: {"type":"response.in_progress","sequence_number":1,"response":'  # fmt: skip


def started(head: bytes, model: bytes, echo: bytes) -> bytes:
    """response.created and response.in_progress, the first two events of every stream."""
    return b"".join((_CREATED, head, _IN_PROGRESS, model, b',"output":[],"usage":null,', echo,
                     _STARTED, head, _IN_PROGRESS, model, b',"output":[],"usage":null,', echo,
                     b"}}\n\n"))  # fmt: skip


def created(response: bytes) -> bytes:
    """response.created alone (a stream that fails before its start)."""
    return b"".join((_CREATED, response, b"}\n\n"))


_FINAL = {
    kind: b'event: %b\ndata: {"type":"%b","sequence_number":' % (kind, kind)
    for kind in (b"response.completed", b"response.incomplete", b"response.failed")
}


def final(kind: bytes, seq: int, response: bytes) -> bytes:
    """response.completed, response.incomplete or response.failed."""
    return b"".join((_FINAL[kind], digits(seq), b',"response":', response, b"}\n\n"))


_ITEM_ADDED = (
    b'event: response.output_item.added\ndata: {"type":"response.output_item.added",'
    b'"sequence_number":'
)
_ITEM_DONE = (
    b'event: response.output_item.done\ndata: {"type":"response.output_item.done",'
    b'"sequence_number":'
)


def item_event(done: bool, seq: int, index: int, item: bytes) -> bytes:
    """output_item.added (`done` False) or output_item.done for an item's bytes."""
    head = _ITEM_DONE if done else _ITEM_ADDED
    return b"".join(
        (head, digits(seq), b',"output_index":', digits(index), b',"item":', item, b"}\n\n")
    )


# A message item: opened (output_item.added, content_part.added), its deltas, closed
# (output_text.done, content_part.done, output_item.done), split where a value goes. `where` is
# an item's `,"item_id":"...","output_index":N`, written once when it opens.
_OPEN_MID = (
    b'","type":"message","status":"in_progress","role":"assistant","content":[]}}\n\n'
    b'event: response.content_part.added\ndata: {"type":"response.content_part.added",'
    b'"sequence_number":'
)
_OPEN_END = (
    b',"content_index":0,"part":{"type":"output_text","text":"","annotations":[],"logprobs":[]}}'
    b"\n\n"
)
# The item's output_text.delta, with %d for its sequence number and %b for its JSON string.
_DELTA_HEAD = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"sequence_number":%d'
)
_DELTA_TAIL = b',"content_index":0,"delta":%b,"logprobs":[]}\n\n'


def text_open(seq: int, index: int, item_id: bytes) -> tuple[bytes, bytes, bytes]:
    """A message item's `where`, its delta template, and its output_item.added and
    content_part.added (sequence numbers seq and seq+1). Ids hold no `%`."""
    i = _DIGITS[index] if index < _DIGITS_LEN else b"%d" % index
    where = b"".join((b',"item_id":"', item_id, b'","output_index":', i))
    if seq < _DIGITS_LEN - 1:
        s0 = _DIGITS[seq]
        s1 = _DIGITS[seq + 1]
    else:
        s0 = b"%d" % seq
        s1 = b"%d" % (seq + 1)
    events = b"".join((_ITEM_ADDED, s0, b',"output_index":', i, b',"item":{"id":"', item_id,
                       _OPEN_MID, s1, where, _OPEN_END))  # fmt: skip
    return where, b"".join((_DELTA_HEAD, where, _DELTA_TAIL)), events


_CLOSE = (
    b'event: response.output_text.done\ndata: {"type":"response.output_text.done",'
    b'"sequence_number":',
    b',"content_index":0,"text":',
    b',"logprobs":[]}\n\n'
    b'event: response.content_part.done\ndata: {"type":"response.content_part.done",'
    b'"sequence_number":',
    b',"content_index":0,"part":{"type":"output_text","text":',
    b',"annotations":[],"logprobs":[]}}\n\n' + _ITEM_DONE,
)
_MESSAGE = (
    b'{"id":"',
    b'","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text",'
    b'"text":',
    b',"annotations":[],"logprobs":[]}]}',
)


def text_close(
    seq: int, index: int, item_id: bytes, where: bytes, quoted: bytes
) -> tuple[bytes, bytes]:
    """A message item's output_text.done, content_part.done and output_item.done (sequence
    numbers seq to seq+2) for its whole text's JSON string, and the finished item's bytes."""
    a, b, c, d, e = _CLOSE
    m1, m2, m3 = _MESSAGE
    item = b"".join((m1, item_id, m2, quoted, m3))
    i = _DIGITS[index] if index < _DIGITS_LEN else b"%d" % index
    if seq < _DIGITS_LEN - 2:
        s0 = _DIGITS[seq]
        s1 = _DIGITS[seq + 1]
        s2 = _DIGITS[seq + 2]
    else:
        s0 = b"%d" % seq
        s1 = b"%d" % (seq + 1)
        s2 = b"%d" % (seq + 2)
    events = b"".join((a, s0, where, b, quoted, c, s1, where, d, quoted, e, s2,
                       b',"output_index":', i, b',"item":', item, b"}\n\n"))  # fmt: skip
    return events, item
