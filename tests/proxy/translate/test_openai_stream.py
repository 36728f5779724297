"""The Chat decoder's byte lanes (the role, finish, usage and first content chunks read from their
bytes) against its general path, on many generated streams."""

from __future__ import annotations

import json
import random
import re
from typing import Any

import orjson
import pytest

from driftgate.proxy.errors import Dialect
from driftgate.proxy.sse import SSEEvent, SSEParser, Usage, event_of
from driftgate.proxy.translate import adapter, stream_translator
from driftgate.proxy.translate.ir import StreamEvent, TextDelta
from driftgate.proxy.translate.openai_chunks import FINISH_TAILS, HEAD, ROLE_TAILS
from driftgate.proxy.translate.openai_stream import OpenAIDecoder
from driftgate.proxy.translate.stream import Translator
from driftgate.proxy.translate.stream_events import MalformedStream

_IDS = ["chatcmpl-bench0001", "chatcmpl-AbC_9.x:1", "c\\u0031", 'c"1', "", "chatcmpl-é"]
_TEXTS = ["Hello", " from", "é✓", 'say "hi"\n', "\\", "\u2028", "", "a" * 300, "\x00"]
_FINISHES = ["stop", "length", "tool_calls", "function_call", "content_filter", "other", ""]


def _head(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.5:  # the API's own head, as OpenAI or bench/fast_upstream.py write it
        head = {
            "id": rng.choice(_IDS[:2]),
            "object": "chat.completion.chunk",
            "created": 1764000000,
        }
        head["model"] = "gpt-4o-mini"
        if rng.random() < 0.5:
            head.update(service_tier="default", system_fingerprint="fp_44709d6fcb")
        return head
    head = {
        "id": rng.choice(_IDS),
        "object": rng.choice(["chat.completion.chunk"] * 5 + ["chat.completion"]),
        "created": rng.choice([1764000000, 0, 7, 1.5, -1, 10**20]),
        "model": rng.choice(["gpt-4o-mini", "m/odel 1", "m\\odel", ""]),
    }
    if rng.random() < 0.4:
        head["service_tier"] = rng.choice(["default", "flex", None])
    if rng.random() < 0.4:
        head["system_fingerprint"] = rng.choice(["fp_44709d6fcb", None, "fp x"])
    if rng.random() < 0.1:
        head = dict(reversed(list(head.items())))
    return head


def _extras(rng: random.Random, chunk: dict[str, Any], asked: bool) -> dict[str, Any]:
    if asked and "usage" not in chunk:
        chunk["usage"] = None
    if rng.random() < 0.05:
        chunk["obfuscation"] = "abc"
    if rng.random() < 0.03:
        chunk["x_unknown"] = {"usage": {"prompt_tokens": 1}}
    return chunk


def _choice(rng: random.Random, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": rng.choice([0] * 9 + [1]), "delta": delta}
    if rng.random() < 0.5:
        choice["logprobs"] = None
    choice["finish_reason"] = finish
    return choice


def _usage(rng: random.Random) -> Any:
    usage: dict[str, Any] = {
        "prompt_tokens": rng.choice([12, 0, 1000, 10**20, -3, 2.0, None]),
        "completion_tokens": rng.choice([8, 0, 41, True]),
        "total_tokens": 20,
    }
    if rng.random() < 0.6:
        details: dict[str, Any] = {"cached_tokens": rng.choice([0, 5, 12, 2000])}
        if rng.random() < 0.5:
            details["audio_tokens"] = 0
        usage["prompt_tokens_details"] = details
    if rng.random() < 0.5:
        usage["completion_tokens_details"] = {
            "reasoning_tokens": rng.choice([0, 3, 64]),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        }
    return rng.choice([usage] * 8 + [None, [1]])


def _chunks(rng: random.Random) -> list[dict[str, Any] | str]:
    """One Chat stream's chunks: mostly the layouts OpenAI writes, with many departures."""
    head = _head(rng)
    asked = rng.random() < 0.6

    def chunk(choices: list[Any], **more: Any) -> dict[str, Any]:
        return _extras(rng, {**head, "choices": choices, **more}, asked)

    out: list[dict[str, Any] | str] = []
    role: dict[str, Any] = {"role": "assistant", "content": rng.choice(["", "", "", None, "x"])}
    if rng.random() < 0.5:
        role["refusal"] = None
    if rng.random() < 0.9:
        out.append(chunk([_choice(rng, role, None)]))
    for _ in range(rng.randint(0, 6)):
        kind = rng.random()
        if kind < 0.6:
            out.append(chunk([_choice(rng, {"content": rng.choice(_TEXTS)}, None)]))
        elif kind < 0.7:
            delta = {"reasoning_content": rng.choice(_TEXTS)}
            out.append(chunk([_choice(rng, delta, None)]))
        elif kind < 0.8:
            call: dict[str, Any] = {"index": rng.randint(0, 1), "id": f"call_{rng.randint(0, 9)}"}
            call["function"] = {"name": "f", "arguments": rng.choice(["", '{"a":', "1}"])}
            out.append(chunk([_choice(rng, {"tool_calls": [call]}, None)]))
        elif kind < 0.85:
            out.append(chunk([_choice(rng, role, None)]))  # the role chunk again
        elif kind < 0.9:
            out.append({"error": {"message": "overloaded", "type": "server_error"}})
        else:
            out.append(chunk([_choice(rng, {"content": "z"}, rng.choice(_FINISHES))]))
    finish = rng.choice(_FINISHES)
    if rng.random() < 0.9:
        choices = [_choice(rng, rng.choice([{}] * 4 + [{"content": None}]), finish)]
        if rng.random() < 0.1:  # a head of its own, that means something: the chunk's usage
            out.append({**head, "usage": _usage(rng), "choices": choices})
        else:
            out.append(chunk(choices))
    if asked and rng.random() < 0.9:
        usage = chunk([], usage=_usage(rng))
        if rng.random() < 0.05:
            usage["usage_again"] = None
        out.append(usage)
    if rng.random() < 0.9:
        out.append("[DONE]")
    return out


def _stream(rng: random.Random) -> bytes:
    """The chunks as SSE, each written compact (as OpenAI does) or with spaces, some escaped."""
    blocks = []
    for c in _chunks(rng):
        if isinstance(c, str):
            blocks.append(b"data: " + c.encode())
            continue
        spaced = rng.random() < 0.15
        data = json.dumps(
            c, ensure_ascii=spaced, separators=None if spaced else (",", ":")
        ).encode()
        if rng.random() < 0.03:
            data = data.replace(b'"choices"', b'"ch\\u006fices"')
        if rng.random() < 0.02:
            data = data.replace(b'"usage":', b'"usage":{"prompt_tokens":9},"usage":', 1)
        blocks.append(b"data: " + data)
    return b"".join(b + b"\n\n" for b in blocks)


def _fast(data: bytes) -> list[StreamEvent] | str:
    """The decoder's events as the translator asks for them: the lane, text_of, quick_of, decode."""
    decoder, out = OpenAIDecoder(), []
    try:
        for block in SSEParser().blocks(data):
            lane = decoder.lane
            if lane is not None and block[: lane[1]] == lane[0] and block[lane[3] :] == lane[2]:
                text = orjson.loads(block[lane[1] : lane[3]]) if lane[1] < len(block) else None
                if type(text) is str and text:
                    out.append(TextDelta(lane[4], text))
                    continue
            hit = decoder.text_of(block)
            if hit is not None:
                out.append(TextDelta(hit[0], hit[1]))
                continue
            quick = decoder.quick_of(block)
            if quick is None:
                event = event_of(block)
                quick = decoder.decode(event) if event is not None else []
            out.extend(quick)
    except (MalformedStream, orjson.JSONDecodeError) as exc:
        return f"{out!r} {exc}"
    return out


def _general(data: bytes) -> list[StreamEvent] | str:
    decoder, out = OpenAIDecoder(), []
    try:
        for block in SSEParser().blocks(data):
            event = event_of(block)
            if event is not None:
                out.extend(decoder.decode(event))
    except (MalformedStream, orjson.JSONDecodeError) as exc:
        return f"{out!r} {exc}"
    return out


@pytest.mark.parametrize("seed", range(600))
def test_generated_chat_streams_decode_alike_by_bytes_and_by_parse(seed: int) -> None:
    """Every neutral event (ids, blocks, texts, stops, usage) is what the general path makes."""
    data = _stream(random.Random(seed))
    assert _fast(data) == _general(data)


class _GeneralOnly:
    """The Chat decoder with its byte lanes hidden: the translator takes the general path."""

    lane = None

    def __init__(self) -> None:
        self._decoder = OpenAIDecoder()

    def decode(self, event: SSEEvent) -> list[StreamEvent]:
        return self._decoder.decode(event)


def _translate(target: Dialect, data: bytes, general: bool, seed: int | None) -> bytes:
    t = stream_translator("openai", target, model="m", include_usage=True, clock=lambda: 7.0)
    if general:
        t = Translator(target, _GeneralOnly(), t.encoder, t.usage)
    out, pos, rng = [], 0, random.Random(seed)
    while pos < len(data):  # whole, or in reads of 1..300 bytes
        step = len(data) if seed is None else rng.randint(1, 300)
        out.append(t.feed(data[pos : pos + step]))
        pos += step
    out.append(t.finish())
    # Ids the encoders make up (a counter's, or random) differ from one translator to the next.
    return _MADE_UP_ID.sub(b"_ID", b"".join(out))


_MADE_UP_ID = re.compile(rb"(?:_|chatcmpl-)[0-9a-f]{24}(?:[0-9a-f]{8})?")


@pytest.mark.parametrize("target", ["anthropic", "responses", "openai"])
@pytest.mark.parametrize("seed", range(40))
def test_generated_chat_streams_translate_to_the_same_bytes(target: Dialect, seed: int) -> None:
    """Client bytes through the lanes, whole or in split reads, are the general path's bytes."""
    data = _stream(random.Random(1000 + seed))
    general = _translate(target, data, True, None)
    assert _translate(target, data, False, None) == general
    assert _translate(target, data, False, seed) == general


def _api_stream(tail: bytes, finish: bytes, usage: bytes) -> list[bytes]:
    head = (
        b'data: {"id":"chatcmpl-C1x","object":"chat.completion.chunk","created":1764000000,'
        b'"model":"gpt-4o-mini-2024-07-18","service_tier":"default",'
        b'"system_fingerprint":"fp_44709d6fcb","choices":['
    )
    content = head + b'{"index":0,"delta":{"content":"Hi"},"logprobs":null,"finish_reason":null}]'
    return [head + tail, content + b',"usage":null}', head + finish, head + usage]


def test_the_apis_layouts_are_read_from_their_bytes() -> None:
    """OpenAI's own role, content, finish and usage chunks take the lanes: nothing is parsed."""
    role = next(t for t in ROLE_TAILS if b"refusal" in t and b"logprobs" in t and b"usage" in t)
    finish = next(
        t for t in FINISH_TAILS if b'"length"' in t and b"logprobs" in t and b"usage" in t
    )
    usage = (
        b'],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,'
        b'"prompt_tokens_details":{"cached_tokens":4,"audio_tokens":0},'
        b'"completion_tokens_details":{"reasoning_tokens":2,"audio_tokens":0,'
        b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}'
    )
    blocks = _api_stream(role, finish, usage)
    assert HEAD(blocks[0]) is not None
    decoder = OpenAIDecoder()
    assert decoder.text_of(blocks[0]) is None
    start = decoder.quick_of(blocks[0])
    assert start is not None and start[0].id == "chatcmpl-C1x"  # type: ignore[union-attr]
    for block in blocks[1:]:  # each read without a parse of the whole chunk
        assert decoder.text_of(block) is None and decoder._parsed is None
        assert decoder.quick_of(block) is not None
    end = decoder.quick_of(b"data: [DONE]")
    assert end is not None and end[-2].stop_reason == "length"  # type: ignore[union-attr]
    assert end[-2].usage == Usage(15, 10, 4, 0, 2)  # type: ignore[union-attr]
    data = b"".join(b + b"\n\n" for b in [*blocks, b"data: [DONE]"])
    assert _fast(data) == _general(data)


def test_the_decoder_stays_the_adapters_decoder() -> None:
    assert type(adapter("openai").decoder()) is OpenAIDecoder


_ROLE = (
    b'data: {"id":"chatcmpl-bench000001","object":"chat.completion.chunk","created":1764000000,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"finish_reason":null}]}'
)
_TEXT = _ROLE.replace(b'"role":"assistant","content":""', b'"content":"Hi"')
_CALL = _ROLE.replace(
    b'"role":"assistant","content":""',
    b'"tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{}"}}]',
)
_FINISH = _ROLE.replace(
    b'"role":"assistant","content":""},"finish_reason":null', b'},"finish_reason":"stop"'
)


@pytest.mark.parametrize(
    "blocks",
    [
        [_ROLE, _TEXT, _CALL, _TEXT, _FINISH],  # the text block opened again from its bytes
        [_ROLE, _TEXT, _FINISH],
    ],
)
def test_a_chunk_with_a_head_of_its_own_is_parsed_whole(blocks: list[bytes]) -> None:
    """A later chunk whose bytes before its choices differ from the first one's (here, as long,
    with usage instead of the id) means what its parse means, though its choices read alike."""
    own = b'"usage":{"prompt_tokens":7},'
    assert len(own) == len(b'"id":"chatcmpl-bench000001",')
    odd = [*blocks[:-2], blocks[-2].replace(b'"id":"chatcmpl-bench000001",', own), blocks[-1]]
    odd[-1] = odd[-1].replace(b'"id":"chatcmpl-bench000001",', own.replace(b"7", b"8"))
    data = b"".join(b + b"\n\n" for b in [*odd, b"data: [DONE]"])
    general = _general(data)
    assert not isinstance(general, str) and general[-2].usage.input_tokens == 8  # type: ignore[attr-defined]
    assert _fast(data) == general
    for cut in range(1, len(odd)):  # each odd chunk on its own: the usage it carries is read
        data = b"".join(b + b"\n\n" for b in [*odd[:cut], *blocks[cut:], b"data: [DONE]"])
        assert _fast(data) == _general(data)
