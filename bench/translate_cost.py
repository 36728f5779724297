"""In-process cost of one translated scenario's own work: the request's translation and the answer's.

For each translated scenario of bench/gateway.py it does what the gateway does to translate one
request, with the benchmark's own body and the fake upstream's own answer: a Responses request is
expanded by an embedded conversation store first, then translated; the answer (the whole body, or
the stream in one chunk as the gateway reads it from this upstream) is translated back. No HTTP,
no recording: what is left is the part of a request's CPU that proxy/translate/, proxy/sse.py and
proxy/responses/ own.

    .venv/bin/python bench/translate_cost.py                       # µs per request, every scenario
    .venv/bin/python bench/translate_cost.py --only translate-stream --profile

On a busy machine the µs move with the load; instructions do not. Counted with valgrind (the
difference between two counts, so start-up drops out):

    valgrind --tool=cachegrind --cache-sim=no .venv/bin/python bench/translate_cost.py \\
        --only translate-stream --count 0        # then --count 1000; (I2 - I1) / 1000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fast_upstream import ANTHROPIC_MESSAGE, OPENAI_COMPLETION, anthropic_events, openai_events

from driftgate.proxy.errors import Dialect
from driftgate.proxy.responses.store import Conversations
from driftgate.proxy.translate import stream_translator, translate_request, translate_response

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
}  # fmt: skip


def one_request(scenario: str) -> Callable[[], None]:
    """A function doing one request's translation work for `scenario`."""
    name, client, upstream, model, stream = SCENARIOS[scenario]
    raw = (BODIES / name).read_bytes()
    store = Conversations(None)
    answer = STREAMS[upstream] if stream else WHOLE[upstream]

    def run() -> None:
        body: dict[str, Any] = orjson.loads(raw)
        source = store.expand(body, None).body if client == "responses" else body
        translate_request(source, client, upstream, model=model, stream=stream)
        request = body if client == "responses" else None
        if stream:
            proc = stream_translator(upstream, client, model=body["model"],
                                     include_usage=True, request=request)  # fmt: skip
            proc.feed(answer)
            proc.finish()
        else:
            translate_response(orjson.loads(answer), upstream, client,
                               model=body["model"], request=request)  # fmt: skip

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
        run = one_request(scenario)
        for _ in range(20):
            run()
        if args.count is not None:
            for _ in range(args.count):
                run()
            continue
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.n):
                run()
            prof.disable()
            print(f"### {scenario}")
            pstats.Stats(prof).sort_stats("tottime").print_stats(20)
            continue
        best = float("inf")
        for _ in range(args.repeat):
            t = time.process_time()
            for _ in range(args.n):
                run()
            best = min(best, (time.process_time() - t) / args.n)
        print(f"{scenario:>28} {best * 1e6:7.1f} us/request")


if __name__ == "__main__":
    main()
