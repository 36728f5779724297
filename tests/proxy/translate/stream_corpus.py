"""A seeded corpus of upstream streams for every translated pair, and the bytes each one gives.

The frozen digests in tests/fixtures/translated_streams.json were written by the stream code
before its fixed events were written from templates; test_stream_corpus.py checks the code of
today still writes exactly those bytes. Streams are generated from a seed (no hypothesis: the
same streams every run), as the upstreams send them and as they misbehave: escapes, control
characters and every plane of unicode in texts, names, ids and models; tool calls with and
without arguments, custom tools, thinking with signatures, redacted thinking, unknown blocks;
every stop reason, usage with and without cache counts; error events, malformed data, streams
cut short, the gateway failing one; in one chunk, an event a chunk, or cut at random bytes.

    .venv/bin/python -m tests.proxy.translate.stream_corpus --write   # only when the bytes are
                                                                      # meant to change
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from driftgate.proxy.errors import Dialect, UpstreamTimeout
from driftgate.proxy.sse import Usage
from driftgate.proxy.translate import stream_translator
from driftgate.proxy.translate.adapters import adapter
from driftgate.proxy.translate.ir import (
    ArgumentsDelta,
    BlockStart,
    BlockStop,
    StopReason,
    StreamDone,
    StreamEnd,
    StreamError,
    StreamEvent,
    StreamStart,
    TextDelta,
    ThinkingDelta,
)
from driftgate.proxy.translate.responses_request import CUSTOM_INPUT
from driftgate.proxy.translate.responses_stream import ResponsesEncoder

FROZEN = Path(__file__).resolve().parents[2] / "fixtures" / "translated_streams.json"
CLOCK = 1_764_000_000.75
STREAMS_PER_SOURCE = 160
PAIRS: list[tuple[Dialect, Dialect]] = [
    ("anthropic", "openai"),
    ("anthropic", "responses"),
    ("openai", "anthropic"),
    ("openai", "responses"),
    ("responses", "anthropic"),
    ("responses", "openai"),
]
# Synthesised ids: the Responses ones (a prefix, 16 hex of the process, 16 of a counter) and the
# uuid-based ones. They differ per run, so each becomes its kind, its length and the order it
# first appeared in: a change of format or of which events share an id still shows.
_IDS = re.compile(rb"(resp_|msg_|rs_|fc_|ctc_|call_|chatcmpl-)([0-9a-f]{32}|[0-9a-f]{24})(?=\")")

_PIECES = [
    "Hello", " world", "", " ", "a", "\"quoted\"", "back\\slash", "line\nbreak", "tab\there",
    "\r\n", "\x00", "\x01\x1f", "\x7f", "é", "✓", "—", "日本語", "😀", "𝄞", "\u2028\u2029",
    "</script>", "%d %s %b", "{\"a\": 1}", "\\u0041", "null", "ü" * 5, "x" * 40,
]  # fmt: skip
_NAMES = ["get_weather", "apply_patch", "apply_patch", "f", "ünï_cødé", 'we"ird', "shell"]
_MODELS = ["m", "claude-sonnet-4-6", "gpt-4o-mini", 'mo"del\\', "modèle-✓"]


def _text(rng: random.Random, most: int = 4) -> str:
    return "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, most)))


def _dump(rng: random.Random, body: Any, compact: bool) -> str:
    if compact:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return json.dumps(body, ensure_ascii=rng.random() < 0.7)


def _count(rng: random.Random) -> int:
    return rng.choice([0, 1, 7, 12, 1024, 2**31, rng.randint(0, 10**6)])


def _args(rng: random.Random) -> list[str]:
    value = {"city": _text(rng, 2), "n": rng.randint(-5, 5)}
    if rng.random() < 0.4:  # a custom tool's one string field, alone or not
        value = (
            {CUSTOM_INPUT: _text(rng, 3)} if rng.random() < 0.7 else {**value, CUSTOM_INPUT: "x"}
        )
    whole = json.dumps(value, ensure_ascii=rng.random() < 0.5)
    cuts = sorted(rng.sample(range(len(whole) + 1), min(rng.randint(0, 3), len(whole) + 1)))
    parts = [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]
    return parts if rng.random() < 0.85 else []


def _end(rng: random.Random, events: list[str], error: str, bad: str) -> list[str]:
    """The stream's end as the upstream may misbehave: cut short, an error, malformed data."""
    roll = rng.random()
    if roll < 0.08:
        return events[: rng.randint(1, max(1, len(events) - 1))]
    if roll < 0.14:
        cut = rng.randint(1, max(1, len(events) - 1))
        return [*events[:cut], error]
    if roll < 0.18:
        cut = rng.randint(1, max(1, len(events) - 1))
        return [*events[:cut], bad]
    return events


def anthropic_stream(rng: random.Random) -> bytes:
    """An Anthropic Messages stream."""
    compact = rng.random() < 0.6
    out: list[str] = []

    def ev(name: str, body: dict[str, Any]) -> None:
        out.append(f"event: {name}\ndata: {_dump(rng, body, compact)}\n\n")

    usage: dict[str, Any] = {"input_tokens": _count(rng), "output_tokens": 1}
    if rng.random() < 0.5:
        usage["cache_read_input_tokens"] = _count(rng)
        usage["cache_creation_input_tokens"] = _count(rng)
    message: dict[str, Any] = {"type": "message", "role": "assistant", "content": [],
                               "model": rng.choice(_MODELS), "stop_reason": None,
                               "stop_sequence": None, "usage": usage}  # fmt: skip
    if rng.random() < 0.9:
        message["id"] = rng.choice(["msg_01ABC", "msg_" + _text(rng, 1), "msg_bench0001"])
    ev("message_start", {"type": "message_start", "message": message})
    if rng.random() < 0.5:
        ev("ping", {"type": "ping"})
    for index in range(rng.randint(0, 4)):
        kind = rng.choice(["text", "text", "tool_use", "thinking", "redacted", "server"])
        if kind == "text":
            if rng.random() < 0.9:
                first = "" if rng.random() < 0.85 else _text(rng, 2)
                ev("content_block_start", {"type": "content_block_start", "index": index,
                                           "content_block": {"type": "text", "text": first}})  # fmt: skip
            for _ in range(rng.randint(0, 8)):
                ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "text_delta", "text": _text(rng)}})  # fmt: skip
                if rng.random() < 0.1:
                    ev("ping", {"type": "ping"})
        elif kind == "tool_use":
            block = {"type": "tool_use", "id": rng.choice(["toolu_01A", "toolu_" + _text(rng, 1)]),
                     "name": rng.choice(_NAMES), "input": {}}  # fmt: skip
            ev("content_block_start", {"type": "content_block_start", "index": index,
                                       "content_block": block})  # fmt: skip
            for part in _args(rng):
                ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "input_json_delta", "partial_json": part}})  # fmt: skip
        elif kind == "thinking":
            ev("content_block_start", {"type": "content_block_start", "index": index,
                                       "content_block": {"type": "thinking", "thinking": "", "signature": ""}})  # fmt: skip
            for _ in range(rng.randint(0, 3)):
                ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "thinking_delta", "thinking": _text(rng)}})  # fmt: skip
            if rng.random() < 0.7:
                ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                           "delta": {"type": "signature_delta", "signature": "EqQB" + _text(rng, 1)}})  # fmt: skip
        elif kind == "redacted":
            ev("content_block_start", {"type": "content_block_start", "index": index,
                                       "content_block": {"type": "redacted_thinking", "data": "ZmFr" + _text(rng, 1)}})  # fmt: skip
        else:
            ev("content_block_start", {"type": "content_block_start", "index": index,
                                       "content_block": {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {}}})  # fmt: skip
            ev("content_block_delta", {"type": "content_block_delta", "index": index,
                                       "delta": {"type": "input_json_delta", "partial_json": "{}"}})  # fmt: skip
        if rng.random() < 0.9:
            ev("content_block_stop", {"type": "content_block_stop", "index": index})
    stop = rng.choice(["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal",
                       "pause_turn", "something_new", None])  # fmt: skip
    delta: dict[str, Any] = {"stop_reason": stop, "stop_sequence": None}
    if stop == "stop_sequence":
        delta["stop_sequence"] = _text(rng, 2)
    if rng.random() < 0.95:
        ev("message_delta", {"type": "message_delta", "delta": delta,
                             "usage": {"output_tokens": _count(rng)}})  # fmt: skip
    ev("message_stop", {"type": "message_stop"})
    error = rng.choice(["overloaded_error", "api_error", "rate_limit_error", "new_error"])
    message_text = rng.choice(["Overloaded", _text(rng, 2), ""])
    err = {"type": "error", "error": {"type": error, "message": message_text}}
    bad = "event: content_block_delta\ndata: {not json\n\n"
    return "".join(
        _end(rng, out, f"event: error\ndata: {_dump(rng, err, compact)}\n\n", bad)
    ).encode()


def openai_stream(rng: random.Random) -> bytes:
    """A Chat Completions stream."""
    compact = rng.random() < 0.5
    created = 1_700_000_000
    base: dict[str, Any] = {"object": "chat.completion.chunk", "model": rng.choice(_MODELS)}
    if rng.random() < 0.9:
        base["id"] = rng.choice(["chatcmpl-9xyz", "chatcmpl-" + _text(rng, 1)])
    out: list[str] = []

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> None:
        nonlocal created
        if rng.random() < 0.2:
            created += 1
        body = {**base, "created": created,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **extra}  # fmt: skip
        out.append(f"data: {_dump(rng, body, compact)}\n\n")

    chunk({"role": "assistant", "content": rng.choice(["", None])})
    tool = 0
    for _ in range(rng.randint(0, 4)):
        kind = rng.choice(["content", "content", "reasoning", "tool"])
        if kind == "content":
            for _ in range(rng.randint(1, 8)):
                chunk({"content": _text(rng)})
        elif kind == "reasoning":
            key = rng.choice(["reasoning_content", "reasoning"])
            for _ in range(rng.randint(1, 3)):
                chunk({key: _text(rng)})
        else:
            call: dict[str, Any] = {"index": tool, "type": "function",
                                    "function": {"name": rng.choice(_NAMES), "arguments": ""}}  # fmt: skip
            if rng.random() < 0.85:
                call["id"] = rng.choice(["call_A1", "call_" + _text(rng, 1)])
            chunk({"tool_calls": [call]})
            for part in _args(rng):
                chunk({"tool_calls": [{"index": tool, "function": {"arguments": part}}]})
            tool += 1
    finish = rng.choice(["stop", "length", "tool_calls", "content_filter", "function_call", "new"])
    if rng.random() < 0.95:
        chunk({}, finish)
    if rng.random() < 0.7:
        usage: dict[str, Any] = {"prompt_tokens": _count(rng), "completion_tokens": _count(rng)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if rng.random() < 0.5:
            usage["prompt_tokens_details"] = {"cached_tokens": rng.choice([0, 5, 10**9])}
        if rng.random() < 0.3:
            usage["completion_tokens_details"] = {"reasoning_tokens": _count(rng)}
        body = {**base, "created": created, "choices": [], "usage": usage}
        out.append(f"data: {_dump(rng, body, compact)}\n\n")
    out.append("data: [DONE]\n\n")
    err = {"error": {"message": rng.choice(["Rate limited", _text(rng, 2), ""]),
                     "type": rng.choice(["rate_limit_exceeded", "server_error", None])}}  # fmt: skip
    return "".join(
        _end(rng, out, f"data: {_dump(rng, err, compact)}\n\n", "data: {oops\n\n")
    ).encode()


def responses_stream(rng: random.Random) -> bytes:
    """A Responses API stream."""
    compact = rng.random() < 0.6
    seq = 0
    out: list[str] = []

    def ev(kind: str, body: dict[str, Any]) -> None:
        nonlocal seq
        data = {"type": kind, "sequence_number": seq, **body}
        seq += 1
        out.append(f"event: {kind}\ndata: {_dump(rng, data, compact)}\n\n")

    rid = rng.choice(["resp_up1", "resp_" + _text(rng, 1)])
    response: dict[str, Any] = {"id": rid, "object": "response", "status": "in_progress",
                                "model": rng.choice(_MODELS), "output": []}  # fmt: skip
    ev("response.created", {"response": response})
    ev("response.in_progress", {"response": response})
    for n in range(rng.randint(0, 4)):
        kind = rng.choice(["message", "message", "reasoning", "function_call", "custom_tool_call"])
        item_id = f"it_{n}"
        item: dict[str, Any] = {"id": item_id, "type": kind}
        if kind in ("function_call", "custom_tool_call"):
            item.update(call_id=f"call_{n}", name=rng.choice(_NAMES))
        ev("response.output_item.added", {"output_index": n, "item": item})
        for _ in range(rng.randint(0, 6)):
            if kind == "message":
                ev("response.output_text.delta", {"item_id": item_id, "output_index": n,
                                                  "content_index": 0, "delta": _text(rng)})  # fmt: skip
            elif kind == "reasoning":
                ev("response.reasoning_summary_text.delta", {"item_id": item_id, "output_index": n,
                                                             "summary_index": 0, "delta": _text(rng)})  # fmt: skip
            else:
                ev("response.function_call_arguments.delta", {"item_id": item_id, "output_index": n,
                                                              "delta": _text(rng, 2)})  # fmt: skip
        if kind == "reasoning" and rng.random() < 0.7:
            item["encrypted_content"] = rng.choice(["sig_" + _text(rng, 1), "redacted:abc", ""])
        if rng.random() < 0.9:
            ev("response.output_item.done", {"output_index": n, "item": item})
    usage: dict[str, Any] = {"input_tokens": _count(rng), "output_tokens": _count(rng)}
    if rng.random() < 0.5:
        usage["input_tokens_details"] = {"cached_tokens": rng.choice([0, 3, 10**9])}
        usage["output_tokens_details"] = {"reasoning_tokens": _count(rng)}
    final = dict(response, usage=usage)
    if rng.random() < 0.2:
        reason = rng.choice(["max_output_tokens", "content_filter", None])
        final.update(status="incomplete", incomplete_details={"reason": reason})
        ev("response.incomplete", {"response": final})
    else:
        final["status"] = "completed"
        ev("response.completed", {"response": final})
    failed = {"type": "response.failed", "sequence_number": seq,
              "response": {"id": rid, "status": "failed",
                           "error": {"code": "server_error", "message": _text(rng, 2)}}}  # fmt: skip
    error = f"event: response.failed\ndata: {_dump(rng, failed, compact)}\n\n"
    return "".join(_end(rng, out, error, "event: response.output_text.delta\ndata: [\n\n")).encode()


def _request(rng: random.Random) -> dict[str, Any] | None:
    """A Responses client's request, as the encoder echoes it (None: none given)."""
    roll = rng.random()
    if roll < 0.2:
        return None
    body: dict[str, Any] = {"model": "m", "input": "hi", "stream": True}
    if roll < 0.3:
        return body
    tools: list[dict[str, Any]] = [{"type": "custom", "name": "apply_patch"}]
    if rng.random() < 0.5:
        tools.append({"type": "function", "name": "get_weather", "parameters": {"type": "object"}})
    options: dict[str, Any] = {
        "instructions": rng.choice([None, 'Be "brief" ✓', "x\ny"]),
        "max_output_tokens": rng.choice([None, 100]),
        "metadata": rng.choice([None, {"k": "v", "ü": "✓"}]),
        "parallel_tool_calls": rng.choice([None, False]),
        "previous_response_id": rng.choice([None, "resp_prev"]),
        "reasoning": rng.choice([None, {"effort": "high", "summary": "auto"}]),
        "store": rng.choice([None, False, True]),
        "temperature": rng.choice([None, 0.2, 1]),
        "text": rng.choice([None, {"format": {"type": "json_object"}}]),
        "tool_choice": rng.choice([None, "required", {"type": "function", "name": "f"}]),
        "tools": tools,
        "top_p": rng.choice([None, 0.5]),
        "truncation": rng.choice([None, "auto"]),
        "user": rng.choice([None, "ü"]),
        "include": ["reasoning.encrypted_content"],
    }
    for key in rng.sample(sorted(options), rng.randint(0, len(options))):
        body[key] = options[key]
    body.setdefault("tools", tools)
    return body


def _chunkings(rng: random.Random, raw: bytes) -> Iterator[tuple[str, list[bytes]]]:
    yield "one", [raw]
    events = [e + b"\n\n" for e in raw.split(b"\n\n") if e]
    yield "event", events if b"".join(events) == raw else [raw]
    cuts = sorted(rng.sample(range(1, len(raw)), min(6, len(raw) - 1))) if len(raw) > 1 else []
    yield "cut", [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


def normalised(out: bytes) -> bytes:
    """`out` with each synthesised id replaced by its kind, length and order of first appearance."""
    seen: dict[bytes, int] = {}

    def name(m: re.Match[bytes]) -> bytes:
        number = seen.setdefault(m.group(0), len(seen))
        return b"%s<%d:%d>" % (m.group(1), len(m.group(2)), number)

    return _IDS.sub(name, out)


def run_case(
    source: Dialect,
    target: Dialect,
    chunks: list[bytes],
    model: str,
    include_usage: bool,
    request: dict[str, Any] | None,
    ending: str,
) -> bytes:
    """The client bytes of one stream, ended by `finish`, or by the gateway's `fail` at the end."""
    proc = stream_translator(source, target, model=model, include_usage=include_usage,
                             clock=lambda: CLOCK, request=request)  # fmt: skip
    out = [proc.feed(c) for c in chunks]
    if ending == "fail-text":
        out.append(proc.fail('upstream connection reset ✓ "x"'))
    elif ending == "fail-error":
        out.append(proc.fail(UpstreamTimeout("the upstream stopped answering")))
    out.append(proc.finish())
    out.append(proc.feed(b"data: [DONE]\n\n"))  # after the end: nothing more
    return b"".join(out) + _kept(proc.encoder)


_STOPS: list[StopReason | None] = [
    None, "stop", "stop_sequence", "length", "tool_calls", "content_filter", "pause",
]  # fmt: skip


def _usage(rng: random.Random) -> Usage:
    return Usage(_count(rng), _count(rng), rng.choice([0, _count(rng)]),
                 rng.choice([0, _count(rng)]), rng.choice([0, _count(rng)]))  # fmt: skip


def neutral_events(rng: random.Random) -> list[StreamEvent]:
    """Neutral events as any decoder may emit them, and in orders none does (a delta for a block
    never started, a stop for one never opened, a second start, events after the end)."""
    out: list[StreamEvent] = []
    if rng.random() < 0.85:
        out.append(StreamStart(rng.choice([None, "msg_up", "chatcmpl-up", 'x"y']), _usage(rng)))
    for index in range(rng.randint(0, 4)):
        kind = rng.choice(["text", "text", "tool_call", "thinking"])
        if rng.random() < 0.85 or kind == "tool_call":
            tool_id = rng.choice([None, "call_1", "toolu_✓"]) if kind == "tool_call" else None
            name = rng.choice(_NAMES) if kind == "tool_call" else None
            out.append(BlockStart(index, kind, tool_id, name))  # type: ignore[arg-type]
            if rng.random() < 0.05:
                out.append(BlockStart(index, kind, tool_id, name))  # type: ignore[arg-type]
        for _ in range(rng.randint(0, 5)):
            if kind == "text" or rng.random() < 0.05:
                out.append(TextDelta(index, _text(rng)))
            elif kind == "tool_call":
                out.append(ArgumentsDelta(index, rng.choice(_args(rng) or [""])))
            else:
                out.append(ThinkingDelta(index, text=_text(rng)))
        if kind == "thinking" and rng.random() < 0.5:
            if rng.random() < 0.5:
                out.append(ThinkingDelta(index, signature="sig" + _text(rng, 1)))
            else:
                out.append(ThinkingDelta(index, redacted="data" + _text(rng, 1)))
        if rng.random() < 0.85:
            out.append(BlockStop(index))
    if rng.random() < 0.1:
        out.append(BlockStop(99))
    roll = rng.random()
    if roll < 0.1:
        out.append(StreamError(_text(rng, 2), rng.choice([400, 429, 500, 503, 529])))
    elif roll < 0.2:
        pass  # cut short: the encoder is left as the upstream left it
    else:
        if rng.random() < 0.9:
            seq = _text(rng, 1) if rng.random() < 0.3 else None
            out.append(StreamEnd(rng.choice(_STOPS), _usage(rng), seq))
        out.append(StreamDone())
        if rng.random() < 0.1:
            out.append(TextDelta(0, "after the end"))
    return out


def encode_case(
    target: Dialect,
    events: list[StreamEvent],
    model: str,
    include_usage: bool,
    request: dict[str, Any] | None,
) -> bytes:
    """The client bytes an encoder writes for `events`, its usage kept as the translator keeps it."""
    usage = Usage()
    encoder = adapter(target).encoder(model, usage, include_usage, lambda: CLOCK, request)
    out = []
    for ev in events:
        if isinstance(ev, (StreamStart, StreamEnd)):
            usage.merge(ev.usage)
        out.append(encoder.encode(ev))
    return b"".join(out) + _kept(encoder)


def _kept(encoder: object) -> bytes:
    """What a Responses encoder keeps after the stream (a stored conversation files it)."""
    if not isinstance(encoder, ResponsesEncoder):
        return b""
    kept = [encoder.response_id, encoder.succeeded, encoder.finished, encoder.response]
    return b"\n#kept " + orjson.dumps(kept)


_SOURCES: dict[str, Callable[[random.Random], bytes]] = {
    "anthropic": anthropic_stream,
    "openai": openai_stream,
    "responses": responses_stream,
}


def cases() -> Iterator[tuple[str, dict[str, bytes]]]:
    """Every case's name and its client bytes by chunking ("one", "event", "cut"), ids normalised."""
    for source, target in PAIRS:
        rng = random.Random(f"{source}-{target}")
        for n in range(STREAMS_PER_SOURCE):
            raw = _SOURCES[source](rng)
            model = rng.choice(_MODELS)
            request = _request(rng) if target == "responses" else None
            include_usage = rng.random() < 0.7
            ending = rng.choice(["finish"] * 8 + ["fail-text", "fail-error"])
            if ending != "finish":  # the upstream dies somewhere in the stream
                raw = raw[: rng.randint(0, len(raw))]
            outs = {
                way: normalised(run_case(source, target, chunks, model, include_usage, request,
                                         ending))
                for way, chunks in _chunkings(rng, raw)
            }  # fmt: skip
            yield f"{source}-{target}-{n}", outs
    for target in ("anthropic", "openai", "responses"):
        rng = random.Random(f"neutral-{target}")
        for n in range(STREAMS_PER_SOURCE):
            events = neutral_events(rng)
            model = rng.choice(_MODELS)
            request = _request(rng) if target == "responses" else None
            out = encode_case(target, events, model, rng.random() < 0.7, request)  # type: ignore[arg-type]
            yield f"neutral-{target}-{n}", {"one": normalised(out)}


def digest(out: bytes) -> str:
    """A short digest of one case's bytes."""
    return hashlib.blake2b(out, digest_size=8).hexdigest()


def main() -> None:
    """Write the frozen digests of every case (or print one case's bytes)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--write", action="store_true", help=f"write {FROZEN.name}")
    p.add_argument("--show", metavar="CASE", help="print one case's normalised bytes")
    args = p.parse_args()
    if args.show:
        print(dict(cases())[args.show]["one"].decode(errors="replace"))
        return
    if args.write:
        frozen = {}
        for name, outs in cases():
            if len(set(outs.values())) != 1:
                raise SystemExit(f"{name}: the chunkings differ")
            frozen[name] = digest(outs["one"])
        FROZEN.write_text(json.dumps(frozen, indent=0, sort_keys=False) + "\n")
        print(f"wrote {len(frozen)} digests to {FROZEN}")


if __name__ == "__main__":
    main()
