"""In-process cost of each stream processor: the same-dialect tap and every translated pair.

Feeds the fake upstream's own streams (bench/fast_upstream.py) through driftgate's stream
processors, without HTTP, so a change to the SSE parser, a decoder or an encoder can be measured
alone (µs per stream, best of several runs). `--profile PAIR` prints a cProfile of one pair.

    .venv/bin/python bench/stream_cost.py
    .venv/bin/python bench/stream_cost.py --chunks one      # the whole stream in one chunk
    .venv/bin/python bench/stream_cost.py --profile anthropic-responses

On a busy machine the µs move with the load; instructions do not. One pair counted with valgrind
(the difference between two counts, so start-up drops out):

    valgrind --tool=cachegrind --cache-sim=no .venv/bin/python bench/stream_cost.py \\
        --count 0 --pair anthropic-responses        # then --count 1000; (I2 - I1) / 1000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from typing import Any

from fast_upstream import anthropic_events, openai_events, responses_events

from driftgate.proxy.respond.tap import stream_tap
from driftgate.proxy.translate import stream_translator

STREAMS = {
    "anthropic": anthropic_events(),
    "openai": openai_events(),
    "responses": responses_events(),
}
REQUEST: dict[str, Any] = {"model": "m", "input": "hi", "stream": True}
# (upstream dialect, client dialect); equal ones are the same-dialect tap.
PAIRS = [
    ("anthropic", "anthropic"),
    ("openai", "openai"),
    ("responses", "responses"),
    ("openai", "anthropic"),
    ("anthropic", "openai"),
    ("anthropic", "responses"),
    ("openai", "responses"),
    ("responses", "anthropic"),
    ("responses", "openai"),
]


def _processor(source: str, target: str) -> Any:
    if source == target:
        return stream_tap(source)  # type: ignore[arg-type]
    return stream_translator(
        source,  # type: ignore[arg-type]
        target,  # type: ignore[arg-type]
        model="m",
        include_usage=True,
        request=REQUEST if target == "responses" else None,
    )


def one_stream(source: str, target: str, chunks: list[bytes]) -> Callable[[], None]:
    """A function that runs one whole stream through a fresh processor."""

    def run() -> None:
        proc = _processor(source, target)
        for c in chunks:
            proc.feed(c)
        proc.finish()

    return run


def cost_us(run: Callable[[], None], n: int, repeat: int) -> float:
    """Best CPU µs per call over `repeat` batches of `n` calls (CPU time: a busy machine only slows it)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        for _ in range(n):
            run()
        best = min(best, (time.process_time() - t) / n)
    return best * 1e6


def main() -> None:
    """Print µs per stream for every pair, and each translated pair against its client's tap."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--chunks",
        choices=["one", "event"],
        default="one",
        help="one: the whole stream in one chunk, as the gateway reads it from a fast upstream",
    )
    p.add_argument("-n", type=int, default=300)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--profile", metavar="SOURCE-TARGET")
    p.add_argument(
        "--count",
        type=int,
        metavar="N",
        help="run N streams of --pair after 20 of warm-up and exit",
    )
    p.add_argument("--pair", metavar="SOURCE-TARGET", default="anthropic-responses")
    args = p.parse_args()

    def chunks(source: str) -> list[bytes]:
        events = STREAMS[source]
        return events if args.chunks == "event" else [b"".join(events)]

    if args.count is not None:
        source, target = args.pair.split("-")
        run = one_stream(source, target, chunks(source))
        for _ in range(20 + args.count):
            run()
        return
    if args.profile:
        source, target = args.profile.split("-")
        run = one_stream(source, target, chunks(source))
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.n):
            run()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        return
    runs = {pair: one_stream(*pair, chunks(pair[0])) for pair in PAIRS}
    best = dict.fromkeys(PAIRS, float("inf"))
    for _ in range(args.repeat):  # interleaved, so a burst of outside load hits every pair alike
        for pair, run in runs.items():
            best[pair] = min(best[pair], cost_us(run, args.n, 1))
    taps = {s: best[(s, t)] for s, t in PAIRS if s == t}
    for (source, target), us in best.items():
        if source == target:
            print(f"{source:>9} -> {target:<9} {us:7.1f} us/stream (same dialect)")
        else:
            print(f"{source:>9} -> {target:<9} {us:7.1f} us/stream, "
                  f"+{us - taps[target]:.1f} over the {target} tap ({us / taps[target]:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
