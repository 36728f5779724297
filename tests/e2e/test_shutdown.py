"""SIGTERM on a real `driftgate proxy` with streams open: refuse new connections at once, drain
for the grace, then end what is left with the dialect's error event, recorded as a 503."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from driftgate.proxy.analytics import usage_db_path
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic

MODEL = "claude-sonnet-4-6"
BOUND = 30.0  # generous upper bound for the process to do what it must


class Lines:
    """A process's stderr, collected on a thread; `wait_for` blocks until a line contains text."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = BOUND) -> str:
        with self._cond:
            found = self._cond.wait_for(
                lambda: any(text in line for line in self.lines), timeout=timeout
            )
        assert found, f"{text!r} not in the log:\n{''.join(self.lines)}"
        return next(line for line in self.lines if text in line)


class Proxy:
    """`driftgate proxy` as a user runs it, routing to a fake upstream."""

    def __init__(self, home: Path, upstream: FakeAnthropic, grace: float) -> None:
        home.mkdir()
        (home / "config.toml").write_text(
            "[gateway]\nport = 0\n"
            f"shutdown_grace = {grace}\n\n"
            "[backends.anthropic]\n"
            'kind = "anthropic"\n'
            f'base_url = "{upstream.url}"\n'
            'key_env = "FAKE_ANTHROPIC_KEY"\n'
        )
        self.home = home
        env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
        env |= {"DRIFTGATE_HOME": str(home), "FAKE_ANTHROPIC_KEY": "sk-ant-fake-test-key"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "driftgate.proxy.cli", "proxy"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        self.log = Lines(self.proc.stderr)
        assert "listening on " in line, line
        self.url = line.split("listening on ")[1].split()[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def rows(self) -> list[tuple[Any, ...]]:
        with sqlite3.connect(usage_db_path(self.home)) as db:
            return db.execute("SELECT endpoint, status, stream FROM usage").fetchall()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def proxies(tmp_path: Path) -> Iterator[Any]:
    started: list[Proxy] = []

    def start(upstream: FakeAnthropic, grace: float) -> Proxy:
        proxy = Proxy(tmp_path / f"home{len(started)}", upstream, grace)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.kill()


def assert_refused_at_once(proxy: Proxy) -> None:
    """Once the proxy says it stopped accepting, a new connection is refused (not left waiting)."""
    proxy.log.wait_for("stopping: not accepting connections")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=BOUND).close()


def test_sigterm_lets_a_stream_finish_within_the_grace(
    proxies: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.slow_stream(0.3))
    proxy = proxies(fake_anthropic, grace=BOUND)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
    with client.messages.stream(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "drain me"}]
    ) as stream:
        events = iter(stream)
        first = next(events)
        assert first.type == "message_start"
        proxy.terminate()
        assert_refused_at_once(proxy)
        rest = list(events)
    assert rest[-1].type == "message_stop"
    assert stream.get_final_text() == "echo: drain me"
    assert proxy.proc.wait(timeout=BOUND) == 0
    assert proxy.rows() == [("messages", 200, 1)]


def test_sigterm_after_the_grace_ends_an_anthropic_stream_with_an_error_event(
    proxies: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.slow_stream(3.0))
    proxy = proxies(fake_anthropic, grace=1.0)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "cut me off"}]
        ) as stream,
    ):
        for event in stream:
            seen.append(event.type)
            if len(seen) == 1:
                proxy.terminate()
                assert_refused_at_once(proxy)
    assert seen[0] == "message_start" and "message_stop" not in seen
    body = info.value.body
    assert isinstance(body, dict) and body["error"]["type"] == "overloaded_error"
    assert "shutting down" in body["error"]["message"]
    assert proxy.proc.wait(timeout=BOUND) == 0
    assert proxy.rows() == [("messages", 503, 1)]  # the gateway's doing, not a 499
    assert "(gateway shutting down)" in proxy.log.wait_for(" 503 ")


def test_sigterm_after_the_grace_ends_a_translated_openai_stream_with_an_error_chunk(
    proxies: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.slow_stream(3.0))
    proxy = proxies(fake_anthropic, grace=1.0)
    client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="k", max_retries=0)
    chunks = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "cut me off"}], stream=True
    )
    seen = 0
    with pytest.raises(openai.APIError) as info:
        for _ in chunks:
            seen += 1
            if seen == 1:
                proxy.terminate()
                assert_refused_at_once(proxy)
    assert seen >= 1
    assert "shutting down" in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "server_error"
    assert proxy.proc.wait(timeout=BOUND) == 0
    assert proxy.rows() == [("chat", 503, 1)]


def test_a_second_sigterm_cuts_the_grace_short(proxies: Any, fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(Behaviour.slow_stream(3.0))
    proxy = proxies(fake_anthropic, grace=3600.0)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "again"}]
        ) as stream,
    ):
        for _ in stream:
            proxy.terminate()
            proxy.log.wait_for("stopping: not accepting connections")
            proxy.terminate()
    assert "shutting down" in str(info.value)
    assert proxy.proc.wait(timeout=BOUND) == 0  # long before the hour of grace
    assert "cut short" in proxy.log.wait_for("shutdown grace")
    assert proxy.rows() == [("messages", 503, 1)]


def test_sigterm_after_the_grace_answers_a_waiting_request_with_a_503(
    proxies: Any, fake_anthropic: FakeAnthropic
) -> None:
    fake_anthropic.script(Behaviour.stall(20.0))
    proxy = proxies(fake_anthropic, grace=0.5)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="k", max_retries=0)
    done = threading.Event()
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "wait"}]
            )
        except BaseException as exc:
            errors.append(exc)
        done.set()

    threading.Thread(target=ask, daemon=True).start()
    assert _wait_until(lambda: len(fake_anthropic.requests) == 1)  # it is upstream, stalled
    proxy.terminate()
    assert done.wait(BOUND)
    assert isinstance(errors[0], anthropic.APIStatusError) and errors[0].status_code == 503
    assert proxy.proc.wait(timeout=BOUND) == 0
    assert proxy.rows() == [("messages", 503, 0)]


def _wait_until(check: Any, bound: float = BOUND) -> bool:
    """Poll `check` until it holds (True) or `bound` seconds pass (False)."""
    pause = threading.Event()  # never set: wait() is a pause that does not busy-loop
    for _ in range(int(bound / 0.05)):
        if check():
            return True
        pause.wait(0.05)
    return bool(check())
