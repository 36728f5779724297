"""`driftgate watch shapes`: shape log -> facts per client -> merged template -> diff -> publish."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from driftgate.proxy.config import load_config
from driftgate.proxy.errors import Dialect, DriftgateError, TemplateError
from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.watchers.extractors import default_watched, extractors
from driftgate.watchers.github import actions_run_url
from driftgate.watchers.npm.command import _sources, check_can_publish
from driftgate.watchers.npm.settings import WatchFlags, resolve
from driftgate.watchers.publish import PublishResult
from driftgate.watchers.shapes.aggregate import KINDS, Facts, facts_of, read_rows, stamp
from driftgate.watchers.shapes.merge import families, merge
from driftgate.watchers.shapes.plan import build_plan, summary
from driftgate.watchers.shapes.probe import untranslated
from driftgate.watchers.shapes.watermark import ShapesState, add_facts, shapes_state_path

DEFAULT_MIN_COUNT = 3
MIN_WRITE_INTERVAL = 1.0


@dataclass(frozen=True)
class ShapesFlags:
    """The command line of `driftgate watch shapes`."""

    shapes: str | None = None
    min_count: int = DEFAULT_MIN_COUNT
    repo: str | None = None
    git_remote: str | None = None
    github_api_url: str | None = None
    workdir: str | None = None
    templates: str | None = None
    dry_run: bool = False


def client_templates(directory: Path = BUNDLED_DIR) -> dict[str, tuple[str, ...]]:
    """The bundled client templates (each may be read from the target repo), with the client
    families each is fed by."""
    out = {}
    for path in sorted(directory.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and doc.get("kind") == "client":
            out[path.stem] = families(doc, path.stem)
    return out


def _combine(per_family: Mapping[str, Facts], wanted: Sequence[str]) -> Facts:
    out: Facts = {k: {} for k in KINDS}
    for family in wanted:
        add_facts(out, per_family.get(family, {}))
    return out


def one_pass(
    flags: ShapesFlags, *, env: Mapping[str, str], config_path: Path | None
) -> dict[str, Any]:
    """Read the log, merge per client template, publish (unless dry-run); the report as JSON."""
    config = load_config(env, config_path)
    watch_flags = WatchFlags(
        repo=flags.repo, git_remote=flags.git_remote, github_api_url=flags.github_api_url,
        workdir=flags.workdir, templates=flags.templates,
    )  # fmt: skip
    wc = resolve(config.watch, watch_flags, home=config.home, extractors=extractors(),
                 defaults=default_watched())  # fmt: skip
    token = env.get("GITHUB_TOKEN") or None
    check_can_publish(wc, token=token, dry_run=flags.dry_run)
    path = Path(flags.shapes).expanduser() if flags.shapes else config.shapes.file(config.home)
    state = ShapesState.load(shapes_state_path(config.home))
    mark = state.watermark(path)
    since = mark.since
    read = read_rows(path, since)
    new_rows = mark.take(read.rows, read.keys)
    report: dict[str, Any] = {
        "shape_log": str(path), "dry_run": flags.dry_run, "since": stamp(since) if since else None,
        "new_requests": sum(r.count for r in new_rows), "templates": [],
        "unmatched_families": [], "watermark": "kept",
    }  # fmt: skip
    if not new_rows:
        return report  # nothing seen since the last successful run: no template read, no API call
    per_family = mark.totals
    seen_now = set(facts_of(new_rows))
    templates, publisher = _sources(
        wc, token=token, dry_run=flags.dry_run, sleep=time.sleep,
        min_write_interval=MIN_WRITE_INTERVAL,
    )  # fmt: skip
    matched: set[str] = set()
    failed = False
    for name, bundled_families in client_templates().items():
        matched.update(bundled_families)
        if not seen_now & set(bundled_families):
            continue  # nothing new from these clients: the template's proposal stands as it was
        try:
            old = templates.read(name)
        except TemplateError as exc:
            report["templates"].append({"template": name, "error": str(exc)})
            failed = True
            continue
        wanted = families(old, name)
        matched.update(wanted)
        facts = _combine(per_family, wanted)
        result = merge(old, facts, flags.min_count)
        new_facts = {
            kind: {n: tuple(sorted(facts[kind][n].types)) for n in names}
            for kind, names in result.added.items()
            if names
        }
        dialect = cast(Dialect, old.get("dialect", "anthropic"))
        breaks = untranslated(dialect, new_facts)
        entry: dict[str, Any] = {
            "template": name,
            "families": list(wanted),
            "summary": summary(result),
            "added": {k: v for k, v in result.added.items() if v},
            "updated": {k: v for k, v in result.updated.items() if v},
            "untranslated": [
                {"backend_kind": t, "kind": k, "name": n, "what": w} for t, k, n, w in breaks
            ],
        }
        if result.changed:
            plan = build_plan(name, old, result, breaks, min_count=flags.min_count,
                              run_url=actions_run_url(env))  # fmt: skip
            entry["title"] = plan.title
            if publisher is not None:
                published: PublishResult = publisher.publish(plan)
                entry["pr"] = {"action": published.action, "number": published.number,
                               "url": published.url, "notes": list(published.notes)}  # fmt: skip
            else:
                entry["body"] = plan.body
        report["templates"].append(entry)
    report["unmatched_families"] = sorted(set(per_family) - matched)
    if not flags.dry_run and not failed:
        state.save()  # only now: a failed or previewing run takes the same shapes again next time
        report["watermark"] = "advanced"
    return report


def render_text(report: Mapping[str, Any]) -> str:
    """The report for a person."""
    since = f" since {report['since']}" if report["since"] else ""
    lines = [f"shape log: {report['shape_log']}: {report['new_requests']} new request(s){since}"]
    for t in report["templates"]:
        if "error" in t:
            lines.append(f"{t['template']}: {t['error']}")
            continue
        pr = t.get("pr")
        where = f" -> PR #{pr['number']} {pr['action']}" if pr else ""
        lines.append(f"{t['template']} ({', '.join(t['families'])}): {t['summary']}{where}")
        for u in t["untranslated"]:
            lines.append(f"  {u['backend_kind']}: {u['kind']} {u['name']}: {u['what']}")
        if "body" in t and report["dry_run"]:
            lines += ["", t["body"]]
    if report["unmatched_families"]:
        lines.append("clients with no client template: " + ", ".join(report["unmatched_families"]))
    if report["new_requests"]:
        if report["watermark"] == "advanced":
            lines.append("watermark advanced: the next run takes only newer shapes")
        elif report["dry_run"]:
            lines.append("watermark kept: a dry run takes the same shapes again next time")
    return "\n".join(lines) + "\n"


def run_watch_shapes(
    flags: ShapesFlags,
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    as_json: bool,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """The command: 0 done (PR opened, updated or nothing to do), 1 a template could not be read,
    else the error's exit code."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        report = one_pass(flags, env=env, config_path=config_path)
    except DriftgateError as exc:
        print(f"driftgate: {exc}", file=err, flush=True)
        return int(getattr(exc, "exit_code", 2))
    out.write(json.dumps(report, indent=2) + "\n" if as_json else render_text(report))
    out.flush()
    failed = [t["template"] for t in report["templates"] if "error" in t]
    if failed:
        print(f"driftgate: the watermark stays where it was: {', '.join(failed)} could not be read",
              file=err, flush=True)  # fmt: skip
        return 1
    return 0
