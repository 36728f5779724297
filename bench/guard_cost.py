"""In-process cost of the spend guard per request: its embedded store against its state in Redis.

With the `--redis-guard` rows' config (a budget never reached, so every request reserves and
settles) it does what the gateway's guard does for a request, on the gateway's event loop
(uvloop when installed): `--concurrency` clients each reserve (the app's `admit` before
forwarding), wait a few turns of the loop (the upstream's answer), and queue their settlement;
every BATCH settlements go to `settle_many` from another thread, as the recorder's thread hands
them over. No HTTP, no records: what is left is proxy/guard/'s part of a request's CPU in the
gateway's process. With `--redis` it starts a redis-server on loopback (stopped at the end) and
also prints the script calls Redis ran per request (INFO commandstats, before and after: the
round trips) and Redis's own CPU per request (on another core in the benchmark).

    .venv/bin/python bench/guard_cost.py              # µs per request, embedded store
    .venv/bin/python bench/guard_cost.py --redis      # the same with the guard's state in Redis

On a busy machine the µs move with the load; instructions do not. Counted with valgrind (the
difference between two counts, so start-up drops out):

    valgrind --tool=cachegrind --cache-sim=no .venv/bin/python bench/guard_cost.py --redis \\
        --count 0        # then --count 20000; (I2 - I1) / 20000

Under valgrind the gateway runs ~50x slower, so a lease (0.5 s) covers fewer requests and a
settlement call (one per 10 ms at most) carries fewer settlements than at full speed: the Redis
store's per-request figures are overstated there, not understated.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from targets import DRIFTGATE_CONFIG, GUARD_ON, guard_redis_toml

from driftgate.proxy.app import _spend_guard
from driftgate.proxy.config import config_from_table, parse_toml
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.guard.guard import SpendGuard, Ticket
from driftgate.proxy.observe.observer import Observer
from driftgate.proxy.templates import load_bundled

RAW = (Path(__file__).resolve().parent / "wrk" / "bodies" / "openai_chat.json").read_bytes()
BATCH = 70  # settlements per recorder batch: 50 ms (keeper.FLUSH_EVERY) at ~1,400 req/s
TURNS = 3  # turns of the loop a request waits for its answer
USD = 0.00001  # what each request's record prices
# The commands the gateway sends (INFO commandstats also counts those its scripts run).
CALLS = ("evalsha", "eval", "script", "ping", "hello", "select")


def _guard(home: Path, redis_url: str | None) -> tuple[SpendGuard, Any]:
    text = DRIFTGATE_CONFIG.format(port=3456, upstream="http://127.0.0.1:1")
    text += GUARD_ON if redis_url is None else guard_redis_toml(redis_url, "cost:")
    path = home / "bench.toml"
    config = config_from_table(parse_toml(path, text), path, {"DRIFTGATE_HOME": str(home)})
    templates = load_bundled()
    observer = Observer(config, lambda: templates, Cooldowns(30.0), time.monotonic)
    return _spend_guard(config, time.time, observer, None), templates


async def _run(guard: SpendGuard, templates: Any, count: int, concurrency: int) -> None:
    """`count` requests through the guard, `concurrency` at a time."""
    body = orjson.loads(RAW)
    settled: list[tuple[Ticket | None, float | None]] = []
    recorder: list[threading.Thread] = []

    def hand_over() -> None:
        batch = settled.copy()
        settled.clear()
        thread = threading.Thread(target=guard.settle_many, args=(batch,))
        thread.start()
        recorder.append(thread)
        if len(recorder) > 4:
            recorder.pop(0).join()

    async def client(n: int) -> None:
        for _ in range(n):
            ticket = await guard.admit(len(RAW), body, "fake-openai", "gpt-4o-mini", "openai",
                                       templates)  # fmt: skip
            for _ in range(TURNS):
                await asyncio.sleep(0)
            settled.append((ticket, USD))
            if len(settled) >= BATCH:
                hand_over()

    each, extra = divmod(count, concurrency)
    await asyncio.gather(*(client(each + (i < extra)) for i in range(concurrency)))
    if settled:
        hand_over()
    for thread in recorder:
        thread.join()
    flush = getattr(guard.store, "flush", None)
    if flush is not None:  # the Redis store: the settlements still pending go now
        await flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    if shutil.which("redis-server") is None:
        raise SystemExit("--redis needs redis-server: apt-get install -y redis-server")
    port = _free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(folder)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not answer PING within 20 s")


def _commandstats(url: str) -> dict[str, tuple[int, int]]:
    """Redis's calls and CPU µs so far, per command."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {k: (int(v["calls"]), int(v["usec"])) for k, v in stats.items()}


def main() -> None:
    """Print the guard's CPU µs per request (and Redis's calls), or run `--count` for valgrind."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", action="store_true", help="the guard's state in Redis")
    parser.add_argument("--count", type=int, default=None, help="run this many and print nothing")
    parser.add_argument("--requests", type=int, default=20000, help="requests per measured round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    try:
        import uvloop

        new_loop: Any = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    with tempfile.TemporaryDirectory(prefix="guard-cost-") as tmp:
        home = Path(tmp)
        proc, url = _start_redis(home) if args.redis else (None, None)
        loop = new_loop()
        try:
            guard, templates = _guard(home, url)
            loop.run_until_complete(guard.store.start())
            run = lambda n: loop.run_until_complete(  # noqa: E731
                _run(guard, templates, n, args.concurrency)
            )
            if args.count is not None:
                run(args.count)
                return
            run(2000)  # warm
            for _ in range(args.rounds):
                before = _commandstats(url) if url else {}
                t0 = time.process_time()
                run(args.requests)
                spent = time.process_time() - t0
                line = f"CPU {spent * 1e6 / args.requests:6.2f} µs/request"
                if url:
                    after = _commandstats(url)
                    for name, (calls, usec) in sorted(after.items()):
                        calls0, usec0 = before.get(name, (0, 0))
                        if calls > calls0 and name[8:] in CALLS:
                            line += (
                                f"; {name[8:]} {(calls - calls0) / args.requests:.4f}/request"
                                f" ({(usec - usec0) / args.requests:.2f} µs of Redis CPU)"
                            )
                print(line, flush=True)
        finally:
            loop.run_until_complete(guard.store.close())
            loop.close()
            if proc is not None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    main()
