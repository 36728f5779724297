"""The watcher catalog, walked: every registered watcher is complete and wired everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger

from driftgate.proxy.cli import build_parser
from driftgate.watchers.catalog import WatcherSpec, watchers

ROOT = Path(__file__).resolve().parents[2]


def test_the_catalog_holds_the_watchers_of_this_issue() -> None:
    assert {"npm", "canary", "liveness"} <= set(watchers())


@pytest.mark.parametrize("spec", list(watchers().values()), ids=lambda s: s.name)
def test_every_watcher_is_complete(spec: WatcherSpec, capsys: pytest.CaptureFixture[str]) -> None:
    assert spec.help and spec.description and "Exit status" in spec.description
    CronTrigger.from_crontab(spec.cron, timezone="UTC")  # the daemon can schedule it
    assert spec.max_age_hours > 0
    assert "--once" in spec.unattended_args
    # It has its workflow, on the same schedule (the workflow test checks the schedule).
    assert (ROOT / ".github" / "workflows" / spec.workflow).is_file()
    # `driftgate watch NAME --help` works and the unattended command parses.
    with pytest.raises(SystemExit) as shown:
        build_parser().parse_args(["watch", spec.name, "--help"])
    assert shown.value.code == 0 and spec.name in capsys.readouterr().out
    build_parser().parse_args(["watch", spec.name, *spec.unattended_args])
