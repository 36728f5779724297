"""`driftgate proxy --workers N` as a user runs it: a supervisor and worker processes on one port.

A killed worker is replaced while the port keeps answering; SIGTERM lets a long stream finish
and the supervisor exits 0; SIGHUP applies a changed route without failing a request (and an
invalid config is refused, the old one kept); one budget holds across two workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from driftgate.proxy.analytics import usage_db_path
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

MODEL = "claude-sonnet-4-6"
BOUND = 60.0  # generous upper bound for processes to do what they must on a loaded machine


class Log:
    """A process's stderr, collected on a thread; `wait_for` blocks until enough lines match."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def count(self, text: str) -> int:
        with self._cond:
            return sum(text in line for line in self.lines)

    def wait_for(self, text: str, times: int = 1, timeout: float = BOUND) -> None:
        with self._cond:
            found = self._cond.wait_for(
                lambda: sum(text in line for line in self.lines) >= times, timeout=timeout
            )
        assert found, f"{text!r} x{times} not in the log:\n{''.join(self.lines)}"


def config_text(upstream: str, *, extra: str = "", openai_upstream: str | None = None) -> str:
    text = (
        "[gateway]\nport = 0\nshutdown_grace = 30\n\n"
        '[backends.anthropic]\nkind = "anthropic"\n'
        f'base_url = "{upstream}"\nkey_env = "FAKE_ANTHROPIC_KEY"\n'
    )
    if openai_upstream is not None:
        text += (
            '\n[backends.openai]\nkind = "openai"\n'
            f'base_url = "{openai_upstream}/v1"\nkey_env = "FAKE_OPENAI_KEY"\nmodels = ["gpt-*"]\n'
        )
    return text + extra


class Gateway:
    """`driftgate proxy --workers N` in its own process, with a scratch DRIFTGATE_HOME."""

    def __init__(self, home: Path, config: str, workers: int) -> None:
        home.mkdir()
        self.home = home
        self.config = home / "config.toml"
        self.config.write_text(config)
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env |= {
            "DRIFTGATE_HOME": str(home),
            "FAKE_ANTHROPIC_KEY": "sk-ant-fake-test-key",
            "FAKE_OPENAI_KEY": "sk-fake-openai-test-key",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftgate.proxy.cli", "proxy", "--workers", str(workers)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.log = Log(self.proc.stderr)
        line = self.proc.stdout.readline()
        assert "listening on " in line, line + "".join(self.log.lines)
        self.url = line.split("listening on ")[1].split()[0]

    def workers(self) -> list[int]:
        """The supervisor's child processes now (Linux /proc)."""
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.workers() if self.proc.poll() is None else []:
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def gateways(tmp_path: Path) -> Iterator[Any]:
    started: list[Gateway] = []

    def start(config: str, workers: int = 2) -> Gateway:
        gw = Gateway(tmp_path / f"home{len(started)}", config, workers)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


def ask(url: str, model: str = MODEL, text: str = "hi") -> httpx.Response:
    """One request on a new connection (so the kernel may pick any worker)."""
    body = {"model": model, "max_tokens": 32, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/messages", json=body, headers={"x-api-key": "k"}, timeout=BOUND)


def scraped_requests(url: str) -> float:
    """driftgate_requests_total summed over its labels, from one scrape (a new connection)."""
    text = httpx.get(f"{url}/metrics", timeout=BOUND).text
    return sum(
        float(row.rsplit(" ", 1)[1])
        for row in text.splitlines()
        if row.startswith("driftgate_requests_total{")
    )


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateways(config_text(fake_anthropic.url))
    first = gw.workers()
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    for _ in range(6):  # while it is down and restarting, the other worker answers
        assert ask(gw.url).status_code == 200
    gw.log.wait_for("was killed by SIGKILL")
    gw.log.wait_for("is serving again")
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and not (
        len(gw.workers()) == 2 and first[0] not in gw.workers()
    ):
        time.sleep(0.05)
    now = gw.workers()
    assert len(now) == 2 and first[0] not in now and first[1] in now
    for _ in range(6):
        assert ask(gw.url).status_code == 200


def test_sigterm_drains_a_long_stream_in_a_worker_then_the_supervisor_exits_0(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.slow_stream(0.3))
    gw = gateways(config_text(fake_anthropic.url))
    client = anthropic.Anthropic(base_url=gw.url, api_key="k", max_retries=0)
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "drain me"}]
    ) as stream:
        events = iter(stream)
        assert next(events).type == "message_start"
        gw.signal(signal.SIGTERM)
        gw.log.wait_for("stopping: 2 worker(s) drain")
        rest = list(events)
    assert rest[-1].type == "message_stop"
    assert stream.get_final_text() == "echo: drain me"
    assert gw.proc.wait(timeout=BOUND) == 0
    with sqlite3.connect(usage_db_path(gw.home)) as db:
        rows = db.execute("SELECT endpoint, status, stream FROM usage").fetchall()
    assert rows == [("messages", 200, 1)]


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_applies_a_new_route_without_failing_a_request_and_refuses_a_bad_config(
    gateways: Any, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, workers: int
) -> None:
    gw = gateways(config_text(fake_anthropic.url), workers)
    assert ask(gw.url, "gpt-4o-mini").status_code != 200  # no backend serves gpt-* yet
    failures: list[str] = []
    done = threading.Event()

    def traffic() -> None:
        while not done.is_set():
            resp = ask(gw.url)
            if resp.status_code != 200:
                failures.append(resp.text)

    with ThreadPoolExecutor(2) as pool:
        running = [pool.submit(traffic) for _ in range(2)]
        gw.config.write_text(config_text(fake_anthropic.url, openai_upstream=fake_openai.url))
        gw.signal(signal.SIGHUP)
        gw.log.wait_for("reloaded ", times=workers)  # every worker applied it
        done.set()
        for job in running:
            job.result()
    assert failures == []
    for _ in range(4):  # each on a new connection: whichever worker answers has the route
        resp = ask(gw.url, "gpt-4o-mini")
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-driftgate-backend"] == "openai"

    gw.config.write_text(config_text(fake_anthropic.url) + "\n[gateway]\nnot_a_key = 1\n")
    gw.signal(signal.SIGHUP)
    gw.log.wait_for("reload refused, the running config stays in force")
    assert gw.log.count("reloaded ") == workers
    resp = ask(gw.url, "gpt-4o-mini")
    assert resp.status_code == 200 and resp.headers["x-driftgate-backend"] == "openai"


def test_one_budget_holds_across_two_workers(gateways: Any, fake_anthropic: FakeAnthropic) -> None:
    gw = gateways(config_text(fake_anthropic.url, extra="\n[guard]\ndaily_usd = 1000\n"))
    assert ask(gw.url).status_code == 200
    db_path = usage_db_path(gw.home)
    cost = 0.0
    deadline = time.monotonic() + BOUND
    while not cost and time.monotonic() < deadline:
        with sqlite3.connect(db_path) as db:
            cost = db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage").fetchone()[0]
    assert cost > 0
    budget = cost * 12.5  # room for about a dozen such requests in all, not a dozen per worker
    gw.config.write_text(
        config_text(fake_anthropic.url, extra=f"\n[guard]\ndaily_usd = {budget}\n")
    )
    gw.signal(signal.SIGHUP)
    gw.log.wait_for("reloaded ", times=2)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: ask(gw.url).status_code, range(60)))
    assert statuses.count(200) >= 1 and statuses.count(503) >= 1
    # /metrics on any worker counts every worker's requests (each writes its totals within 1 s),
    # the ones the halted guard refused (a record with status 503 each) included. Until both
    # workers have written their last totals the two can answer differently, so the count must
    # hold for a run of scrapes (each on a new connection: the kernel picks either worker).
    answered = 1 + len(statuses)
    agreeing, seen = 0, 0.0
    deadline = time.monotonic() + BOUND
    while agreeing < 12 and time.monotonic() < deadline:
        seen = scraped_requests(gw.url)
        agreeing = agreeing + 1 if seen == answered else 0
        time.sleep(0.05)
    assert agreeing == 12, f"the last scrape counted {seen} requests, not {answered}"
    health = httpx.get(f"{gw.url}/health", timeout=BOUND).json()
    assert health["worker"]["workers"] == 2 and health["worker"]["pid"] in gw.workers()
    assert health["guard"]["state"] == "halted"  # the shared guard, whichever worker answers
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=BOUND) == 0
    with sqlite3.connect(db_path) as db:
        spent = db.execute("SELECT SUM(cost_usd) FROM usage WHERE status = 200").fetchone()[0]
        refused = db.execute("SELECT count(*) FROM usage WHERE outcome = 'guard_halted'")
        assert refused.fetchone()[0] == statuses.count(503)  # each refusal recorded, by either
    # Every admitted request reserved at least what it cost, so settled spend stays in budget
    # (each worker with its own budget would have let about twice as much through).
    assert spent <= budget + 1e-9
    assert statuses.count(200) <= 12


def test_the_live_stream_on_any_worker_lists_every_workers_requests(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateways(config_text(fake_anthropic.url))
    health = httpx.get(f"{gw.url}/health", timeout=BOUND).json()
    assert health["worker"]["live_stream"] == "every worker"
    sent = [f"live-{i}" for i in range(12)]  # on new connections: the kernel spreads them
    seen: list[str] = []
    with httpx.stream("GET", f"{gw.url}/analytics/stream", timeout=BOUND) as resp:
        assert resp.status_code == 200
        lines = resp.iter_lines()
        assert next(lines).startswith(": driftgate analytics stream")  # following from here
        for text in sent:
            assert ask(gw.url, text=text).status_code == 200
        for line in lines:
            if line.startswith("data: "):
                seen.append(orjson.loads(line[6:])["request_id"])
            if len(seen) == len(sent):
                break
    # One worker alone would list about half: each of the 12 requests, whichever worker
    # answered it, arrives once.
    assert len(seen) == len(set(seen)) == len(sent)
    with sqlite3.connect(usage_db_path(gw.home)) as db:
        ids = {r for (r,) in db.execute("SELECT request_id FROM usage")}
    assert set(seen) == ids


def test_driftgate_top_lists_every_workers_requests_and_says_so(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    from textual.pilot import Pilot

    from driftgate.proxy.top.app import TopApp
    from driftgate.proxy.top.client import GatewayClient
    from tests.proxy.top.shown import shown
    from tests.proxy.top.traffic import until

    gw = gateways(config_text(fake_anthropic.url))

    async def scenario(app: TopApp, pilot: Pilot[None]) -> None:
        await until(pilot, lambda: app.state.streaming, "the live stream to open", BOUND)
        await pilot.press("3")
        await until(pilot, lambda: "all 2 workers" in shown(app, "#hits-note"), "the note", BOUND)
        for i in range(10):  # each on a new connection: both workers answer some
            resp = await asyncio.to_thread(ask, gw.url, MODEL, f"top-{i}")
            assert resp.status_code == 200
        await until(pilot, lambda: app.state.seen == 10, "ten hits", BOUND)

    async def main() -> None:
        app = TopApp(GatewayClient(gw.url, None), interval=0.2)
        async with app.run_test(size=(140, 42)) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


def test_each_workers_request_lines_carry_its_pid(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateways(config_text(fake_anthropic.url))
    workers = gw.workers()
    for i in range(8):  # on new connections: the kernel spreads them
        assert ask(gw.url, text=f"pid-{i}").status_code == 200
    gw.log.wait_for(" driftgate.requests[", times=8)
    lines = [ln for ln in gw.log.lines if " driftgate.requests[" in ln]
    # `... INFO driftgate.requests[<pid>]: messages claude-sonnet-4-6 -> anthropic (...) 200 ...`
    pids = {int(ln.split(" driftgate.requests[", 1)[1].split("]: ", 1)[0]) for ln in lines}
    assert pids <= set(workers), (pids, workers)
    assert all("]: messages claude-sonnet-4-6 -> anthropic " in ln for ln in lines), lines


def _descriptors(pid: int, *, beyond_stdio: bool = False) -> set[str]:
    """What a process's descriptors point at (`socket:[inode]`, `pipe:[inode]`), by /proc."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        if beyond_stdio and int(fd.name) <= 2:
            continue
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return {d for d in found if d.startswith(("socket:[", "pipe:["))}


def test_workers_are_forked_from_the_supervisor_and_keep_none_of_its_descriptors(
    gateways: Any, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateways(config_text(fake_anthropic.url))
    supervisor = Path(f"/proc/{gw.proc.pid}/cmdline").read_bytes()
    workers = gw.workers()
    # A fork keeps the supervisor's command line; a new interpreter would show --worker-link.
    assert [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in workers] == [supervisor] * 2
    # None of the supervisor's sockets (the reserved port, each worker's link) or pipes (its
    # signal wake-up): a worker holding another's link would keep it from seeing the supervisor go.
    ours = _descriptors(gw.proc.pid, beyond_stdio=True)
    assert len([d for d in ours if d.startswith("socket:")]) == 3
    for pid in workers:
        assert not (_descriptors(pid) & ours), pid
    assert ask(gw.url).status_code == 200
    gw.proc.kill()  # SIGKILL: nothing of the supervisor's runs; each worker sees its link close
    gw.proc.wait()
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.05)
    # Orphans are reaped by init; a zombie's /proc entry says so in its status.
    left = [
        pid
        for pid in workers
        if Path(f"/proc/{pid}").exists()
        and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    ]
    assert left == []
    assert gw.log.count("the supervisor went away: stopping") == 2
