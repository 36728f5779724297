"""The run report as text for a person and as `--json`."""

from __future__ import annotations

from driftgate.watchers.report import PackageOutcome, PlannedPR, RunReport, render_text, report_json


def _pr(action: str) -> PlannedPR:
    return PlannedPR(
        title="drift(x): p 1 -> 2: +1 model",
        labels=("drift", "drift:npm"),
        body="body",
        fingerprint="sha256:" + "0" * 64,
        auto_merge=False,
        action=action,
        number=7,
        url="https://github.invalid/o/r/pull/7",
    )


def _report(*outcomes: PackageOutcome) -> RunReport:
    return RunReport(
        registry="https://registry.npmjs.org/",
        dry_run=False,
        started_at="2026-11-24T21:00:00Z",
        outcomes=outcomes,
    )


def test_the_last_line_tallies_what_happened_per_package() -> None:
    report = _report(
        PackageOutcome("a", "anthropic", "latest", "up-to-date", "1", "1"),
        PackageOutcome("b", "openai", "latest", "pr", "1", "2", pr=_pr("opened")),
        PackageOutcome("c", "claude-code", "latest", "pr", "1", "2", pr=_pr("noop")),
        PackageOutcome("d", "other", "latest", "up-to-date", "3", "3"),
    )
    text = render_text(report, show_body=False)
    assert text.endswith(
        "4 package(s) checked: 2 up to date, 1 PR opened, 1 PR already up to date.\n"
    )
    assert "result: opened #7 https://github.invalid/o/r/pull/7" in text
    assert report.exit_code == 0 and report_json(report)["error"] is None


def test_a_failure_ends_the_text_with_its_one_line_reason_and_sets_the_exit_code() -> None:
    report = _report(
        PackageOutcome("a", "anthropic", "latest", "up-to-date", "1", "1"),
        PackageOutcome(
            "b", "openai", "latest", "error", "6.0.0", None, error="registry down", exit_code=3
        ),
    )
    text = render_text(report, show_body=False)
    assert text.endswith("watch npm: 1 of 2 package(s) failed: b: registry down\n")
    assert "b -> openai.json: latest ?, template 6.0.0: FAILED" in text
    doc = report_json(report)
    assert doc["ok"] is False and doc["exit_code"] == 3 and report.exit_code == 3
    assert doc["packages"][1]["versions"] == {"template": "6.0.0", "registry": None}
