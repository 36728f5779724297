"""`driftgate doctor` through the real CLI: each failure line and what it tells the user to do."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.cli import main
from driftgate.proxy.guard.ledger import Halt, SqliteGuardStore, guard_db_path
from driftgate.watchers.daemon.store import RunStore
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.redis_server import RedisServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DRIFTGATE_HOME", str(home))
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "DRIFTGATE_PORT", "DRIFTGATE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def doctor(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[int, dict[str, Any]]]]:
    def run(config: str = "", *flags: str) -> tuple[int, dict[str, Any]]:
        text = config if "port" in config else f"[gateway]\nport = {_free_port()}\n{config}"
        (home / "config.toml").write_text(text, encoding="utf-8")
        code = main(["doctor", "--json", *flags])
        return code, json.loads(capsys.readouterr().out)

    yield run


def _lines(doc: dict[str, Any], level: str) -> list[str]:
    return [f["text"] for f in doc["findings"] if f["level"] == level]


def _backend(fake: FakeAnthropic, key: str = "sk-ant-fake-test-key", name: str = "claude") -> str:
    return f'[backends.{name}]\nkind = "anthropic"\nbase_url = "{fake.url}"\nkey = "{key}"\n'


def test_a_healthy_setup_passes(
    doctor: Callable[..., tuple[int, dict[str, Any]]], fake_anthropic: FakeAnthropic
) -> None:
    code, doc = doctor(_backend(fake_anthropic))
    assert code == 0 and doc["ok"]
    assert any("claude: reachable and key accepted" in t for t in _lines(doc, "ok"))
    sections = {f["section"] for f in doc["findings"]}
    assert {"versions", "config", "templates", "backends", "port", "recorder", "guard"} <= sections


def test_a_refused_key_fails_and_is_never_printed(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    fake = FakeAnthropic(api_key="sk-ant-the-right-key").start()
    try:
        code, doc = doctor(_backend(fake, key="sk-ant-wrong-key-0123456789"))
    finally:
        fake.stop()
    assert code == 1
    assert any("refused the key" in t for t in _lines(doc, "fail"))
    assert "sk-ant-wrong-key-0123456789" not in json.dumps(doc)


def test_an_unreachable_backend_and_an_unset_key_fail_with_what_to_do(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    closed = _free_port()
    config = (
        f'[backends.gone]\nkind = "openai"\nbase_url = "http://127.0.0.1:{closed}/v1"\nkey = "sk-x"\n'
        '[backends.keyless]\nkind = "anthropic"\nkey_env = "DOCTOR_TEST_UNSET_KEY"\n'
    )
    code, doc = doctor(config)
    assert code == 1
    fails = {f["text"]: f["fix"] for f in doc["findings"] if f["level"] == "fail"}
    assert any(t.startswith("gone:") for t in fails)
    assert fails["keyless: $DOCTOR_TEST_UNSET_KEY is not set"].startswith("export DOCTOR_TEST")


def test_a_config_mistake_is_the_first_failure(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    code, doc = doctor("prot = 4000\n")
    assert code == 1
    assert any("did you mean `port`" in t for t in _lines(doc, "fail"))


def test_a_port_held_by_another_program_fails(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        code, doc = doctor(f"[gateway]\nport = {port}\n", "--offline")
    assert code == 1
    assert f"127.0.0.1:{port} is taken by another program" in _lines(doc, "fail")


def test_a_port_held_by_a_gateway_is_fine(
    doctor: Callable[..., tuple[int, dict[str, Any]]], gateway_factory: Callable[..., Any]
) -> None:
    gw = gateway_factory()
    port = int(gw.url.rsplit(":", 1)[1])
    code, doc = doctor(f"[gateway]\nport = {port}\n", "--offline")
    assert code == 0
    assert any("a driftgate gateway answers" in t for t in _lines(doc, "ok"))


def test_an_invalid_overlay_template_fails(
    doctor: Callable[..., tuple[int, dict[str, Any]]], tmp_path: Path
) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "anthropic.json").write_text('{"name": "anthropic"}', encoding="utf-8")
    code, doc = doctor(f'templates_dir = "{overlay}"\n', "--offline")
    assert code == 1
    assert any("overlay anthropic.json" in t for t in _lines(doc, "fail"))


def test_a_halted_guard_and_a_stale_daemon_job_are_warnings(
    doctor: Callable[..., tuple[int, dict[str, Any]]], home: Path
) -> None:
    store = SqliteGuardStore(guard_db_path(home))
    store.halt(Halt("the daily total budget of $1.00 is reached", since=0.0, until=None))
    store.close()
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    runs = RunStore(home / "daemon.sqlite3", clock=lambda: two_days_ago)
    runs.finish_run(runs.start_run("npm"), "ok", 0)
    code, doc = doctor("[guard]\ndaily_usd = 1.0\n", "--offline")
    assert code == 0  # warnings do not fail the report
    warns = _lines(doc, "warn")
    assert "halted: the daily total budget of $1.00 is reached" in warns
    assert any(t.startswith("npm: last success 48.") for t in warns)


def test_a_github_token_is_checked_against_the_repository(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
    github_api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_doctor_test_token_000000000000")
    config = f'[watch]\nrepo = "{github_api.full_name}"\ngithub_api_url = "{github_api.url}"\n'
    code, doc = doctor(config, "--offline")
    assert not any(f["section"] == "github" for f in doc["findings"])  # --offline skips it
    code, doc = doctor(config)
    assert code == 0
    github = [f["text"] for f in doc["findings"] if f["section"] == "github"]
    assert any(t.startswith("GITHUB_TOKEN accepted by") for t in github)
    assert "ghp_doctor_test_token" not in json.dumps(doc)


def test_the_text_report_says_what_to_do(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (home / "config.toml").write_text(
        f'[gateway]\nport = {_free_port()}\n[backends.k]\nkind = "anthropic"\nkey_env = "DOCTOR_UNSET"\n',
        encoding="utf-8",
    )
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "FAIL k: $DOCTOR_UNSET is not set" in out
    assert "-> export DOCTOR_UNSET=..." in out
    assert out.rstrip().endswith("ok")


def test_workers_are_counted_against_the_usable_cores(
    doctor: Callable[..., tuple[int, dict[str, Any]]],
) -> None:
    from driftgate.proxy.serve.cores import usable_cores

    cores = usable_cores()
    code, doc = doctor("", "--offline")
    (said,) = [f for f in doc["findings"] if f["section"] == "workers"]
    assert said["level"] == "ok" and said["text"].startswith("one process; ")
    assert f"{cores} usable core" in said["text"]

    code, doc = doctor('workers = "auto"\n', "--offline")
    (said,) = [f for f in doc["findings"] if f["section"] == "workers"]
    if cores > 1:
        assert said["level"] == "ok" and said["text"].startswith(f"{cores} worker processes (auto)")

    code, doc = doctor(f"workers = {cores + 3}\n", "--offline")
    assert code == 0  # a warning, not a failure
    (said,) = [f for f in doc["findings"] if f["section"] == "workers"]
    assert said["level"] == "warn" and said["text"].startswith(f"{cores + 3} worker processes; ")
    assert "more workers than cores" in said["text"] and f"up to {cores}" in said["fix"]


def test_the_guard_s_redis_is_connected_to_and_its_halt_read(
    doctor: Callable[..., tuple[int, dict[str, Any]]], redis_server: RedisServer
) -> None:
    import asyncio

    from driftgate.proxy.guard.redis_store import RedisGuardStore
    from driftgate.proxy.guard.settings import StateSettings

    async def halt() -> None:
        store = RedisGuardStore(StateSettings(redis_url=redis_server.url), lambda _b: ())
        store.halt(Halt("the daily total budget of $1.00 is reached", since=0.0, until=None))
        await store.close()

    asyncio.run(halt())
    config = f'[guard]\ndaily_usd = 1.0\n\n[state]\nredis_url = "{redis_server.url}"\n'
    code, doc = doctor(config, "--offline")
    assert code == 0
    ok = [t for t in _lines(doc, "ok") if "shared in Redis" in t]
    assert ok and f"at {redis_server.url}, fail open" in ok[0]
    assert "halted: the daily total budget of $1.00 is reached" in _lines(doc, "warn")

    redis_server.stop()
    code, doc = doctor(config.replace("redis_url", 'fail = "closed"\nredis_url'), "--offline")
    assert code == 1
    failed = [f for f in doc["findings"] if f["level"] == "fail"]
    assert failed[0]["text"].startswith(f"Redis at {redis_server.url} does not answer")
    assert "completions are refused with a 503 (fail = closed)" in failed[0]["fix"]


def test_a_guard_redis_that_may_evict_keys_is_a_warning_with_the_setting_that_fixes_it(
    doctor: Callable[..., tuple[int, dict[str, Any]]], redis_server: RedisServer
) -> None:
    import redis

    config = f'[guard]\ndaily_usd = 1.0\n\n[state]\nredis_url = "{redis_server.url}"\n'
    code, doc = doctor(config, "--offline")
    assert code == 0 and not [f for f in doc["findings"] if "evict" in f["text"]]  # the default

    with redis.Redis.from_url(redis_server.url) as client:
        client.config_set("maxmemory", "64mb")
        client.config_set("maxmemory-policy", "allkeys-lru")
    code, doc = doctor(config, "--offline")
    assert code == 0  # a warning: the guard works, but Redis may forget what it counted
    (found,) = [f for f in doc["findings"] if "evict" in f["text"]]
    assert found["level"] == "warn" and found["section"] == "guard"
    assert "maxmemory 64 MB (maxmemory-policy allkeys-lru)" in found["text"]
    assert "maxmemory-policy noeviction" in found["fix"]


def test_the_responses_stores_redis_is_connected_to_guard_or_not(
    doctor: Callable[..., tuple[int, dict[str, Any]]], redis_server: RedisServer
) -> None:
    config = f'[state]\nredis_url = "{redis_server.url}"\nkey_prefix = "dr:"\n'
    code, doc = doctor(config, "--offline")
    assert code == 0
    said = [f["text"] for f in doc["findings"] if f["section"] == "responses"]
    assert said == [f"stored conversations in Redis at {redis_server.url}: 0 responses under 'dr:'"]
    redis_server.stop()
    code, doc = doctor(config, "--offline")
    assert code == 1
    failed = [f for f in doc["findings"] if f["section"] == "responses"]
    assert failed[0]["level"] == "fail"
    assert failed[0]["text"].startswith(f"Redis at {redis_server.url} does not answer")
    assert "continues only the conversations it stored itself (fail = open)" in failed[0]["fix"]


def test_an_unset_key_is_one_failure_not_also_a_refused_key(
    doctor: Callable[..., tuple[int, dict[str, Any]]], fake_anthropic: FakeAnthropic
) -> None:
    # The probe went out without a key and got a 401: "refused the key" blamed a key never sent.
    config = (
        f'[backends.claude]\nkind = "anthropic"\nbase_url = "{fake_anthropic.url}"\n'
        'key_env = "DOCTOR_TEST_UNSET_KEY"\n'
    )
    code, doc = doctor(config)
    assert code == 1
    fails = [t for t in _lines(doc, "fail") if t.startswith("claude:")]
    assert fails == ["claude: $DOCTOR_TEST_UNSET_KEY is not set"]
    assert any(
        t.startswith("claude: ") and "answers (it asks for the key $DOCTOR_TEST_UNSET_KEY" in t
        for t in _lines(doc, "ok")
    )
