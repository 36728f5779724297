"""`driftgate proxy --workers 2` without Redis: a backend that fails on one worker cools on both."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_workers import BOUND, Gateway, ask, config_text
from tests.fakes import Behaviour
from tests.fakes.anthropic_upstream import FakeAnthropic


@pytest.fixture
def second() -> Iterator[FakeAnthropic]:
    """The fallback's upstream."""
    fake = FakeAnthropic().start()
    yield fake
    fake.stop()


def _fallback(url: str) -> str:
    return (
        '\n[backends.second]\nkind = "anthropic"\n'
        f'base_url = "{url}"\nkey_env = "FAKE_ANTHROPIC_KEY"\nmodels = ["never-*"]\n'
        '\n[fallbacks]\n"claude-sonnet-4-6" = ["second:claude-sonnet-4-6"]\n'
    )


def _cooling_on(url: str) -> tuple[int, bool]:
    """(the answering worker's pid, whether it has the primary cooling), on a new connection."""
    doc: dict[str, Any] = httpx.get(f"{url}/health", timeout=BOUND).json()
    primary = next(b for b in doc["backends"] if b["name"] == "anthropic")
    return doc["worker"]["pid"], primary["state"] == "cooling"


def test_a_backend_that_fails_on_one_worker_cools_on_every_worker(
    tmp_path: Path, fake_anthropic: FakeAnthropic, second: FakeAnthropic
) -> None:
    gw = Gateway(tmp_path / "home", config_text(fake_anthropic.url, extra=_fallback(second.url)), 2)
    try:
        workers = set(gw.workers())
        assert len(workers) == 2
        fake_anthropic.script(Behaviour.status(500))
        r = ask(gw.url)
        assert r.status_code == 200 and r.headers["x-driftgate-backend"] == "second"
        cooling: set[int] = set()
        deadline = time.monotonic() + BOUND
        while cooling != workers:  # the kernel spreads new connections over both workers
            assert time.monotonic() < deadline, f"cooling on {cooling} of {workers}"
            pid, is_cooling = _cooling_on(gw.url)
            if is_cooling:
                cooling.add(pid)
        assert _cooling_on(gw.url)[1]
        doc = httpx.get(f"{gw.url}/health", timeout=BOUND).json()
        assert doc["cooldowns"]["shared"] == "workers"
        for _ in range(6):  # whichever worker answers, the primary is not tried again
            assert ask(gw.url).headers["x-driftgate-backend"] == "second"
        assert len(fake_anthropic.requests) == 1
    finally:
        gw.stop()
