"""The dead-man's switch: pings around every watcher run, against a loopback HTTP server."""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
from pathlib import Path

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.catalog import WatcherSpec
from driftgate.watchers.errors import RegistryError
from driftgate.watchers.ping import Pinger, ping_url
from driftgate.watchers.pinged_run import run_pinged
from tests.fakes.ping_server import Ping, PingServer
from tests.fakes.server_thread import closed_port

ROOT = Path(__file__).resolve().parents[2]


def spec(run: object) -> WatcherSpec:
    return WatcherSpec(
        name="test",
        help="",
        description="",
        add_arguments=lambda _p: None,
        run=run,  # type: ignore[arg-type]
        cron="* * * * *",
        max_age_hours=1,
    )


def run_with(server_url: str | None, job: object, tmp_path: Path) -> tuple[int, str]:
    err = io.StringIO()
    env = {"DRIFTGATE_HOME": str(tmp_path)}
    if server_url:
        env["DRIFTGATE_PING_URL"] = server_url
    status = run_pinged(spec(job), argparse.Namespace(), config_path=None, env=env, err=err)
    return status, err.getvalue()


def test_success_pings_start_then_the_url(ping_server: PingServer, tmp_path: Path) -> None:
    status, _ = run_with(ping_server.url, lambda _a: 0, tmp_path)
    assert status == 0
    assert [p.suffix for p in ping_server.pings] == ["/start", ""]


def test_failure_pings_fail_with_the_exit_status(ping_server: PingServer, tmp_path: Path) -> None:
    status, _ = run_with(ping_server.url, lambda _a: 1, tmp_path)
    assert status == 1
    assert ping_server.pings[-1] == Ping("/fail", "driftgate watch test failed: exit status 1\n")

    def broken(_a: object) -> int:
        raise RegistryError("registry down")

    status, err = run_with(ping_server.url, broken, tmp_path)
    assert status == 3 and "driftgate: registry down" in err
    assert ping_server.pings[-1].body.endswith("exit status 3\n")


def test_a_failing_ping_never_fails_the_run(ping_server: PingServer, tmp_path: Path) -> None:
    ping_server.status = 500
    status, err = run_with(ping_server.url, lambda _a: 0, tmp_path)
    assert status == 0 and "failed (the server answered 500); the run goes on" in err
    assert "5f1c6a42" not in err  # the check's id is its secret
    status, err = run_with(f"http://127.0.0.1:{closed_port()}/x", lambda _a: 0, tmp_path)
    assert status == 0 and "ping to 127.0.0.1" in err
    assert "failed (connection refused (nothing is listening at that address))" in err
    assert "Error" not in err  # no exception class names


def test_no_url_no_pings_and_the_config_table_is_read(tmp_path: Path) -> None:
    sent: list[str] = []
    assert not Pinger(None, post=lambda u, _b: sent.append(u)).start("x")
    assert sent == []
    assert ping_url({}, {"ping_url": "https://hc-ping.com/abc/"}) == "https://hc-ping.com/abc"
    assert ping_url({"DRIFTGATE_PING_URL": "https://e/1"}, {"ping_url": "https://c/2"}) == (
        "https://e/1"
    )


def test_a_config_error_still_pings_fail(ping_server: PingServer, tmp_path: Path) -> None:
    def bad(_a: object) -> int:
        raise ConfigError("bad flag")

    status, _ = run_with(ping_server.url, bad, tmp_path)
    assert status == 2 and ping_server.pings[-1].suffix == "/fail"


def test_sigterm_mid_run_pings_fail_with_143(ping_server: PingServer, tmp_path: Path) -> None:
    # A real `driftgate watch canary` against an upstream that never answers, then SIGTERM.
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    config = tmp_path / "config.toml"
    config.write_text(
        '[backends.a]\nkind = "anthropic"\n'
        f'base_url = "http://127.0.0.1:{listener.getsockname()[1]}"\nkey = "sk-ant-x"\n'
    )
    env = {**os.environ, "DRIFTGATE_HOME": str(tmp_path), "DRIFTGATE_PING_URL": ping_server.url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "driftgate.proxy.cli", "--config", str(config), "watch", "canary"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert ping_server.wait_for(1)[0].suffix == "/start"
        conn, _ = listener.accept()  # the first probe is in flight
        proc.terminate()
        assert proc.wait(timeout=30) == 143
        pings = ping_server.wait_for(2)
        assert pings[-1] == Ping("/fail", "driftgate watch canary failed: exit status 143\n")
        conn.close()
    finally:
        proc.kill()
        proc.communicate()
        listener.close()
