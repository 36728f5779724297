"""In-process cost of filing stored Responses turns, at the store's size bound.

What the gateway does for a `responses-stored(-stream)` request once its answer is known, with
the default [responses] bounds and the file in a scratch directory: the event loop's part
(`remember`: the turn kept in memory, indexed, queued, the bounds kept) and the writer
thread's (the turn and its items written, the evicted ones deleted, one commit per gathered
batch), with the gateway's settings of the cyclic collector. The store is first filled to its
bound (store_max_items), so every measured turn evicts one, as in the benchmark's steady state. Turns come in bursts of `--burst` (the turns of
the writer's 50 ms gathering pause at ~3,000 req/s) with a pause between, so the writer batches
as it does under load.

    .venv/bin/python bench/store_cost.py                  # µs per turn: loop, writer, total
    .venv/bin/python bench/store_cost.py --profile        # cProfile of the loop's part
    .venv/bin/python bench/store_cost.py --memory         # no file: the loop's part alone

On a busy machine the µs move with the load; instructions do not. Counted with valgrind (the
difference between two counts, so start-up and the fill drop out; a fixed hash seed, so dict
layouts repeat between the two):

    PYTHONHASHSEED=0 valgrind --tool=cachegrind --cache-sim=no \\
        .venv/bin/python bench/store_cost.py --count 0
    # then --count 4000; (I2 - I1) / 4000, less the same with --dry
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.responses.store import DB_NAME as DB
from driftgate.proxy.responses.store import Conversations
from driftgate.proxy.server import _settle_heap

BODY = {
    "model": "claude-sonnet-4-6",
    "max_output_tokens": 64,
    "stream": True,
    "instructions": "You are terse.",
    "input": "Say hello in five words.",
    "store": True,
}


def response(n: int) -> dict[str, Any]:
    """What the Responses encoder hands the store for the benchmark's answer (the parts it reads)."""
    text = "Hello! How can I help you today?"
    item = {
        "id": f"msg_{n:024x}",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    return {"id": f"resp_{n:024x}", "object": "response", "status": "completed", "output": [item]}


def writer_cpu() -> float:
    """CPU seconds of the store's writer thread so far (0 when it is gone)."""
    for thread in threading.enumerate():
        if thread.name == "driftgate-responses" and thread.native_id is not None:
            try:
                with open(f"/proc/self/task/{thread.native_id}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return 0.0
            return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in ticks
    return 0.0


def file_turns(
    conv: Conversations, start: int, count: int, burst: int, pause: float, dry: bool = False
) -> None:
    """Remember `count` turns numbered from `start`, `burst` at a time with `pause` between
    (`dry`: make each answer but file nothing, to count what the benchmark itself costs)."""
    expanded = conv.expand(BODY)  # the same request each time (its item has no id to index)
    remember = (lambda e, r: None) if dry else conv.remember
    for n in range(start, start + count):
        remember(expanded, response(n))
        if pause and (n - start) % burst == burst - 1:
            time.sleep(pause)


def main() -> None:
    """Fill the store to its bound, then file --count more turns and print the cost per turn."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="turns measured (default 10000)")
    parser.add_argument("--max-items", type=int, default=ResponsesSettings().store_max_items)
    parser.add_argument("--burst", type=int, default=150, help="turns per writer batch (150)")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between bursts (0.05)")
    parser.add_argument("--memory", action="store_true", help="no file: the loop's part only")
    parser.add_argument("--dry", action="store_true", help="file nothing (the bench's own cost)")
    parser.add_argument("--profile", action="store_true", help="cProfile the loop's part")
    args = parser.parse_args()
    settings = ResponsesSettings(store_max_items=args.max_items)
    _settle_heap()  # the gateway's collector settings: at the defaults it ran every few turns
    with tempfile.TemporaryDirectory() as scratch:
        conv = Conversations(None if args.memory else Path(scratch) / DB, settings)
        file_turns(conv, 0, args.max_items, 256, 0.02)  # to the bound (not measured)
        time.sleep(1.0)
        file_turns(conv, args.max_items, 512, args.burst, args.pause)  # settle into batches
        time.sleep(0.2)
        wall0, proc0, loop0, writer0 = (
            time.perf_counter(), time.process_time(), time.thread_time(), writer_cpu()
        )  # fmt: skip
        profile = cProfile.Profile() if args.profile else None
        if profile is not None:
            profile.enable()
        file_turns(conv, args.max_items + 512, args.count, args.burst, args.pause, args.dry)
        if profile is not None:
            profile.disable()
        loop = time.thread_time() - loop0
        writer_before_stop = writer_cpu() - writer0
        conv.close()  # what is queued is written
        proc = time.process_time() - proc0
        wall = time.perf_counter() - wall0
    per = 1e6 / max(args.count, 1)
    print(
        f"{args.count} turns at the bound ({args.max_items}), bursts of {args.burst}: "
        f"loop {loop * per:.1f} µs/turn, writer ~{writer_before_stop * per:.1f} µs/turn "
        f"(10 ms ticks, before the stop), process {proc * per:.1f} µs/turn (wall {wall:.1f} s)"
    )
    if profile is not None:
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
