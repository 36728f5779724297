"""[daemon] and [daemon.jobs.NAME]: defaults from the watcher catalog, overrides, mistakes refused."""

from __future__ import annotations

from typing import Any

import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.catalog import watchers
from driftgate.watchers.daemon.jobs import daemon_settings


def settings(table: dict[str, Any]) -> dict[str, Any]:
    return {j.name: j for j in daemon_settings(table, watchers()).jobs}


def test_every_catalog_watcher_is_a_job_with_its_default_schedule() -> None:
    jobs = settings({})
    assert set(jobs) == set(watchers())
    assert jobs["npm"].cron == watchers()["npm"].cron and jobs["npm"].enabled
    assert jobs["npm"].argv == ("watch", "npm", "--once")
    assert jobs["liveness"].argv == ("watch", "liveness", "--once", "--source", "daemon")


def test_overrides() -> None:
    jobs = settings(
        {
            "jitter_seconds": 0,
            "jobs": {
                "npm": {"enabled": False},
                "canary": {"interval_seconds": 90, "args": ["--backend", "anthropic"]},
                "liveness": {"cron": "*/5 * * * *", "jitter_seconds": 3},
            },
        }
    )
    assert not jobs["npm"].enabled
    assert jobs["canary"].schedule == "every 90 s" and jobs["canary"].cron is None
    assert jobs["canary"].argv[-2:] == ("--backend", "anthropic")
    assert jobs["liveness"].schedule == "cron */5 * * * *" and jobs["liveness"].jitter_seconds == 3
    assert jobs["npm"].jitter_seconds == 0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"jobs": {"nope": {}}}, "no watcher is called 'nope'"),
        ({"jobs": {"npm": {"cron": "* * *"}}}, "not a crontab line"),
        ({"jobs": {"npm": {"cron": "0 * * * *", "interval_seconds": 5}}}, "not both"),
        ({"jobs": {"npm": {"interval_seconds": 0}}}, "must be positive"),
        ({"jobs": {"npm": {"enabld": False}}}, "unknown key"),
        ({"jobs": {"npm": {"enabled": "no"}}}, "true or false"),
        ({"stop_grace_seconds": -1}, ">= 0"),
    ],
)
def test_mistakes_are_refused_with_a_sentence(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        daemon_settings(table, watchers())
