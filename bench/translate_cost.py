"""In-process cost of one translated scenario's own work: the request's translation and the answer's.

For each translated scenario of bench/gateway.py it does what the gateway does to translate one
request, with the benchmark's own body and the fake upstream's own answer: a Responses request is
expanded by an embedded conversation store first, then translated; the answer (the whole body, or
the stream in one chunk as the gateway reads it from this upstream) is translated back. No HTTP,
no recording: what is left is the part of a request's CPU that proxy/translate/, proxy/sse.py and
proxy/responses/ own. The `responses-stored` scenarios also file each turn (`store: true`) as the
gateway does after the answer, in a store with its file in a scratch directory, filled to its
bound first (every turn filed evicts one): the event loop's part and the writer thread's.

    .venv/bin/python bench/translate_cost.py                       # µs per request, every scenario
    .venv/bin/python bench/translate_cost.py --only translate-stream --profile

On a busy machine the µs move with the load; instructions do not. Counted with valgrind (the
difference between two counts, so start-up drops out; a fixed hash seed, so dict layouts repeat
between the two):

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no \\
        .venv/bin/python bench/translate_cost.py --only translate-stream --count 0
    # then --count 1000; (I2 - I1) / 1000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fast_upstream import ANTHROPIC_MESSAGE, OPENAI_COMPLETION, anthropic_events, openai_events

from driftgate.proxy.errors import Dialect
from driftgate.proxy.respond.responder import turn_output
from driftgate.proxy.responses.store import DB_NAME, Conversations
from driftgate.proxy.translate import stream_translator, translate_request, translate_response
from driftgate.proxy.translate.responses_stream import ResponsesEncoder

BODIES = Path(__file__).resolve().parent / "wrk" / "bodies"
STREAMS = {"anthropic": b"".join(anthropic_events()), "openai": b"".join(openai_events())}
WHOLE = {"anthropic": orjson.dumps(ANTHROPIC_MESSAGE), "openai": orjson.dumps(OPENAI_COMPLETION)}
# scenario: (request body, client dialect, upstream dialect, upstream model, streamed)
SCENARIOS: dict[str, tuple[str, Dialect, Dialect, str, bool]] = {
    "translate": ("translate.json", "anthropic", "openai", "gpt-4o-mini", False),
    "translate-openai": (
        "translate_openai.json", "openai", "anthropic", "claude-sonnet-4-6", False,
    ),
    "responses-translate": (
        "responses_translate.json", "responses", "anthropic", "claude-sonnet-4-6", False,
    ),
    "translate-stream": ("translate_stream.json", "anthropic", "openai", "gpt-4o-mini", True),
    "translate-stream-openai": (
        "translate_stream_openai.json", "openai", "anthropic", "claude-sonnet-4-6", True,
    ),
    "responses-translate-stream": (
        "responses_translate_stream.json", "responses", "anthropic", "claude-sonnet-4-6", True,
    ),
    "responses-bridge-stream": (
        "responses_bridge_stream.json", "responses", "openai", "llama-3.1-8b", True,
    ),
    "responses-stored": (
        "responses_stored.json", "responses", "anthropic", "claude-sonnet-4-6", False,
    ),
    "responses-stored-stream": (
        "responses_stored_stream.json", "responses", "anthropic", "claude-sonnet-4-6", True,
    ),
}  # fmt: skip
STORED = ("responses-stored", "responses-stored-stream")


def filled_store(scratch: Path) -> Conversations:
    """A store with its file in `scratch`, filled to its bound (store_max_items) with turns of
    the benchmark's size, its writer done with them."""
    store = Conversations(scratch / DB_NAME)
    expanded = store.expand({"input": "Say hello in five words.", "store": True})
    text = {"type": "output_text", "text": "Hello! How can I help you today?"}
    for n in range(store.settings.store_max_items):
        item = {"id": f"msg_{n:024x}", "type": "message", "status": "completed",
                "role": "assistant", "content": [text]}  # fmt: skip
        store.remember(expanded, {"id": f"resp_{n:024x}", "output": [item]})
        if n % 256 == 255:
            time.sleep(0.002)  # the writer keeps up, as it does between bursts
    time.sleep(0.5)
    return store


def one_request(scenario: str, store: Conversations | None = None) -> Callable[[], None]:
    """A function doing one request's translation work for `scenario` (and with `store`, its
    turn filed there, as the gateway files a stored turn after the answer)."""
    name, client, upstream, model, stream = SCENARIOS[scenario]
    raw = (BODIES / name).read_bytes()
    expander = store or Conversations(None)
    answer = STREAMS[upstream] if stream else WHOLE[upstream]

    def run() -> None:
        body: dict[str, Any] = orjson.loads(raw)
        expanded = expander.expand(body, None) if client == "responses" else None
        source = expanded.body if expanded is not None else body
        translate_request(source, client, upstream, model=model, stream=stream)
        request = body if client == "responses" else None
        if stream:
            proc = stream_translator(upstream, client, model=body["model"],
                                     include_usage=True, request=request)  # fmt: skip
            proc.feed(answer)
            proc.finish()
            encoder = proc.encoder
            if store is not None and expanded is not None:
                assert isinstance(encoder, ResponsesEncoder) and encoder.succeeded
                store.remember(expanded, turn_output(encoder))
        else:
            whole = translate_response(orjson.loads(answer), upstream, client,
                                       model=body["model"], request=request)  # fmt: skip
            if store is not None and expanded is not None:
                store.remember(expanded, whole.body)

    return run


def main() -> None:
    """Print CPU µs per request for each scenario (best batch), or profile or count one."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    p.add_argument("-n", type=int, default=2000, help="requests per batch")
    p.add_argument("--repeat", type=int, default=7, help="batches; the best one is kept")
    p.add_argument("--profile", action="store_true", help="cProfile one batch of each scenario")
    p.add_argument(
        "--count", type=int, metavar="N", help="run N requests after 20 of warm-up and exit"
    )
    args = p.parse_args()
    chosen = args.only or list(SCENARIOS)
    for scenario in chosen:
        with tempfile.TemporaryDirectory() as scratch:
            store = filled_store(Path(scratch)) if scenario in STORED else None
            try:
                measure(scenario, one_request(scenario, store), args)
            finally:
                if store is not None:
                    store.close()


def measure(scenario: str, run: Callable[[], None], args: argparse.Namespace) -> None:
    """Warm up, then count, profile or time `run` as `args` say."""
    for _ in range(20):
        run()
    if args.count is not None:
        for _ in range(args.count):
            run()
        return
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.n):
            run()
        prof.disable()
        print(f"### {scenario}")
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    best = float("inf")
    for _ in range(args.repeat):
        t = time.process_time()
        for _ in range(args.n):
            run()
        best = min(best, (time.process_time() - t) / args.n)
    print(f"{scenario:>28} {best * 1e6:7.1f} us/request")


if __name__ == "__main__":
    main()
