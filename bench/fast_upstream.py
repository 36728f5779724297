"""A fake Anthropic + OpenAI upstream that is as cheap as possible: canned bytes over raw asyncio.

It parses just enough HTTP/1.1 (request line, headers, Content-Length or chunked body,
keep-alive) to answer `POST /v1/messages`, `/v1/chat/completions` and `/v1/responses`, streaming or
not, with prebuilt responses. No framework: every microsecond it spends is a microsecond
charged to whichever target is being measured.

    python bench/fast_upstream.py --port 0     # prints "listening on 127.0.0.1:PORT"
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import sys
from typing import Any

STREAM_RE = re.compile(rb'"stream"\s*:\s*true')

ANTHROPIC_MESSAGE: dict[str, Any] = {
    "id": "msg_bench0001",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "Hello from the fast upstream."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 8},
}

OPENAI_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-bench0001",
    "object": "chat.completion",
    "created": 1764000000,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello from the fast upstream."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
}

STREAM_WORDS = ["Hello", " from", " the", " fast", " upstream", "."]


def _dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def anthropic_events() -> list[bytes]:
    """The SSE events of a streamed Anthropic message, one bytes per event."""
    start = dict(
        ANTHROPIC_MESSAGE,
        content=[],
        stop_reason=None,
        usage={"input_tokens": 12, "output_tokens": 1},
    )
    events: list[tuple[str, Any]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    for word in STREAM_WORDS:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": word},
        }
        events.append(("content_block_delta", delta))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 8},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {_dumps(data)}\n\n".encode() for name, data in events]


def openai_events() -> list[bytes]:
    """The SSE events of a streamed OpenAI chat completion (with a final usage chunk)."""
    base = {
        "id": "chatcmpl-bench0001",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "gpt-4o-mini",
    }
    chunks: list[dict[str, Any]] = [
        dict(
            base,
            choices=[
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        )
    ]
    for word in STREAM_WORDS:
        chunks.append(
            dict(base, choices=[{"index": 0, "delta": {"content": word}, "finish_reason": None}])
        )
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    chunks.append(dict(base, choices=[], usage=OPENAI_COMPLETION["usage"]))
    return [f"data: {_dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]


RESPONSE: dict[str, Any] = {
    "id": "resp_bench0001",
    "object": "response",
    "created_at": 1764000000,
    "status": "completed",
    "error": None,
    "incomplete_details": None,
    "model": "gpt-4o-mini",
    "output": [
        {
            "id": "msg_bench0001",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Hello from the fast upstream.", "annotations": []}
            ],
        }
    ],
    "usage": {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 8,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 20,
    },
}


def responses_events() -> list[bytes]:
    """The SSE events of a streamed Responses API answer, in the documented order."""
    item = RESPONSE["output"][0]
    part = {"type": "output_text", "text": "", "annotations": []}
    started = dict(RESPONSE, status="in_progress", output=[], usage=None)
    base = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": dict(item, content=[])}),
        ("response.content_part.added", dict(base, part=part)),
    ]
    events += [("response.output_text.delta", dict(base, delta=w)) for w in STREAM_WORDS]
    events += [
        ("response.output_text.done", dict(base, text="".join(STREAM_WORDS))),
        ("response.content_part.done", dict(base, part=item["content"][0])),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": RESPONSE}),
    ]
    return [
        f"event: {name}\ndata: {_dumps({'type': name, 'sequence_number': n, **data})}\n\n".encode()
        for n, (name, data) in enumerate(events)
    ]


def json_response(status: str, obj: Any) -> bytes:
    """A complete keep-alive HTTP/1.1 response with a JSON body."""
    body = _dumps(obj).encode()
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nrequest-id: req_bench\r\n\r\n"
    )
    return head.encode() + body


def sse_response(events: list[bytes]) -> bytes:
    """A complete chunked SSE response, one chunk per event, as a real upstream sends it."""
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(e), e) for e in events)
    return head + body + b"0\r\n\r\n"


# (path without query, streaming?) -> the whole response, built once.
RESPONSES: dict[tuple[str, bool], bytes] = {
    ("/v1/messages", False): json_response("200 OK", ANTHROPIC_MESSAGE),
    ("/v1/messages", True): sse_response(anthropic_events()),
    ("/v1/chat/completions", False): json_response("200 OK", OPENAI_COMPLETION),
    ("/v1/chat/completions", True): sse_response(openai_events()),
    ("/v1/responses", False): json_response("200 OK", RESPONSE),
    ("/v1/responses", True): sse_response(responses_events()),
    ("/", False): json_response("200 OK", {"ok": True}),  # readiness probe
    ("/v1/models", False): json_response(
        "200 OK", {"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}
    ),
}


def not_found(method: str, target: str) -> bytes:
    """A 404 naming what was asked, so a misconfigured target is easy to spot."""
    print(f"fast_upstream: no route for {method} {target}", file=sys.stderr, flush=True)
    err = {
        "type": "error",
        "error": {"type": "not_found_error", "message": f"no route {method} {target}"},
    }
    return json_response("404 Not Found", err)


def decode_chunked(buf: bytes | bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at `start`: (body, end offset), or None if incomplete."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2)
            return (bytes(out), end + 4) if end >= 0 else None
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; answers each complete request with canned bytes."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None and self._answer_one():
            pass

    def _answer_one(self) -> bool:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "chunked" in headers.get("transfer-encoding", ""):
            decoded = decode_chunked(buf, end + 4)
            if decoded is None:
                return False
            body, stop = decoded
        else:
            stop = end + 4 + int(headers.get("content-length", "0"))
            if len(buf) < stop:
                return False
            body = bytes(buf[end + 4 : stop])
        del buf[:stop]
        path = target.split("?", 1)[0]
        response = RESPONSES.get((path, STREAM_RE.search(body) is not None))
        assert self.transport is not None
        self.transport.write(response if response is not None else not_found(method, target))
        if headers.get("connection") == "close":
            self.transport.close()
            self.transport = None
        return True


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    print(f"listening on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    """Parse flags and serve."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
