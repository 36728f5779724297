"""The npm watch pipeline per package: dist-tags → compare → fetch → extract → rebake → diff → decide → publish."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from driftgate.proxy.errors import DriftgateError
from driftgate.watchers import secrets
from driftgate.watchers.diff import diff_templates
from driftgate.watchers.errors import RegistryError, WatchError
from driftgate.watchers.extractors import Extracted, Extractor
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.registry_url import display_url
from driftgate.watchers.npm.tarball import PackageFiles
from driftgate.watchers.prplan import RUNBOOK_PATH, Provenance, build_plan
from driftgate.watchers.publish import PublishResult, PullRequestPlan
from driftgate.watchers.rebake import rebake
from driftgate.watchers.report import PackageOutcome, PlannedPR, RunReport
from driftgate.watchers.state import TrivialRelease, WatchState
from driftgate.watchers.template_sources import TemplateSource, template_facts

OnTrivial = Literal["record", "pr"]
AutoMerge = Literal["off", "additive"]


@dataclass(frozen=True)
class WatchedPackage:
    """A package to watch, the template it feeds, and its dist-tags (the first one feeds the template)."""

    package: str
    template: str
    tags: tuple[str, ...] = ("latest",)
    # An extractor's name, for a fork or mirror published under another package name.
    extractor: str | None = None


@dataclass(frozen=True)
class WatchSettings:
    """How a pass decides and publishes."""

    dry_run: bool = False
    on_trivial: OnTrivial = "record"
    auto_merge: AutoMerge = "off"
    run_url: str | None = None
    runbook: str = RUNBOOK_PATH


class Publishing(Protocol):
    """What the pipeline needs of watchers.publish.Publisher."""

    def publish(self, plan: PullRequestPlan) -> PublishResult:
        """Open, update or leave alone the template's PR."""
        ...


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _manifest(files: PackageFiles) -> dict[str, Any]:
    text = files.text("package.json")
    try:
        manifest = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return manifest if isinstance(manifest, dict) else {}


class NpmWatcher:
    """Runs one pass over the watched packages; one package's failure never stops the others."""

    def __init__(
        self,
        *,
        registry: NpmRegistry,
        extractors: Mapping[str, Extractor],
        templates: TemplateSource,
        state: WatchState,
        settings: WatchSettings,
        publisher: Publishing | None = None,
        clock: Callable[[], datetime] = utc_now,
        progress: Callable[[str], None] | None = None,
        compat: Callable[[str, str], str] | None = None,
    ) -> None:
        if publisher is None and not settings.dry_run:
            raise WatchError(
                "publishing needs a publisher (a repository and a token); use --dry-run to preview"
            )
        self.registry = registry
        self.extractors = extractors
        self.templates = templates
        self.state = state
        self.settings = settings
        self.publisher = publisher
        self.clock = clock
        self._progress = progress
        # (package, version) -> the compat report's Markdown, for client templates' PRs.
        self._compat = compat
        # (template, registry) versions of the package being checked, for its error outcome.
        self._versions: tuple[str | None, str | None] = (None, None)

    def _say(self, watched: WatchedPackage, message: str) -> None:
        if self._progress is not None:
            self._progress(f"{watched.package}: {message}")

    def run(self, packages: Sequence[WatchedPackage]) -> RunReport:
        """Check every package, save the state (unless dry-run) and report."""
        started = _stamp(self.clock())
        outcomes = tuple(self.check(p) for p in packages)
        if not self.settings.dry_run:
            self.state.save()
        return RunReport(
            registry=display_url(self.registry.base_url),
            dry_run=self.settings.dry_run,
            started_at=started,
            outcomes=outcomes,
        )

    def check(self, watched: WatchedPackage) -> PackageOutcome:
        """One package through the pipeline; any error becomes an `error` outcome."""
        before = self.registry.bytes_transferred
        self._versions = (None, None)
        try:
            outcome = self._check(watched)
        except DriftgateError as exc:
            outcome = self._failed(watched, str(exc), getattr(exc, "exit_code", 2))
        except Exception as exc:  # a bug or an unforeseen library error: recorded, the run goes on
            outcome = self._failed(watched, f"unexpected {type(exc).__name__}: {exc}", 1)
        return replace(outcome, bytes_transferred=self.registry.bytes_transferred - before)

    def _failed(self, watched: WatchedPackage, message: str, exit_code: int) -> PackageOutcome:
        first_line = (message.strip().splitlines() or ["failed"])[0]
        return PackageOutcome(
            package=watched.package,
            template=watched.template,
            tag=watched.tags[0],
            status="error",
            template_version=self._versions[0],
            registry_version=self._versions[1],
            error=first_line,
            exit_code=exit_code,
        )

    def _extractor_for(self, w: WatchedPackage) -> Extractor:
        if w.extractor:
            named = [e for e in self.extractors.values() if e.name == w.extractor]
            if named:
                return named[0]
            raise WatchError(f"{w.package}: no extractor is called {w.extractor!r}")
        extractor = self.extractors.get(w.package)
        if extractor is None:
            raise WatchError(
                f"no extractor is registered for {w.package} "
                "(built-ins, or a plugin in the entry-point group driftgate.extractors)"
            )
        return extractor

    def _check(self, w: WatchedPackage) -> PackageOutcome:
        extractor = self._extractor_for(w)
        current = self.templates.read(w.template)
        current_version = str(current["source"].get("version"))
        self._versions = (current_version, None)
        tag = w.tags[0]
        self._say(w, f"asking for dist-tags (template has {current_version})")
        tags = self.registry.dist_tags(w.package)
        version = tags.get(tag)
        self._versions = (current_version, version)
        if version is None:
            raise RegistryError(
                f"dist-tag {tag!r} not found (the registry lists: {', '.join(sorted(tags)) or 'none'})"
            )
        base = PackageOutcome(
            package=w.package,
            template=w.template,
            tag=tag,
            status="up-to-date",
            template_version=current_version,
            registry_version=version,
            tags={t: tags[t] for t in w.tags if t in tags},
            facts=template_facts(current),
            facts_from="template",
        )
        dry = self.settings.dry_run
        if version == current_version:
            if not dry:
                self.state.mark_seen(w.package, tag, version)
            return base
        if not dry and self.state.last_seen(w.package, tag) == version:
            return replace(base, status="already-handled")

        self._say(w, f"{tag} is {version}: fetching its metadata and tarball")
        fetched = self.registry.bytes_transferred
        info = self.registry.version_info(w.package, version)
        files = self.registry.tarball(info)
        size = (self.registry.bytes_transferred - fetched) / 1e6
        self._say(w, f"{size:.1f} MB fetched, integrity verified, {len(files.files)} files read")
        extracted = _extract(extractor, files)
        observed_at = _stamp(self.clock())
        rb = rebake(
            current,
            extracted,
            package=w.package,
            version=version,
            integrity=info.integrity,
            observed_at=observed_at,
        )
        drift = diff_templates(current, rb.candidate)
        problems = tuple(dict.fromkeys((*extracted.problems, *rb.problems)))
        found = replace(
            base,
            severity=drift.severity,
            summary=drift.summary(),
            counts=dict(drift.counts),
            facts=dict(extracted.facts),
            facts_from="package",
            problems=problems,
            new_models=tuple(rb.new_models),
            removed_models=tuple(rb.removed_models),
        )
        if drift.severity == "none":
            if not dry:
                self.state.mark_seen(w.package, tag, version)
            return replace(found, status="no-drift")

        folded = self.state.pending_trivial(w.template, current_version)
        if drift.severity == "trivial" and not problems and self.settings.on_trivial == "record":
            release = TrivialRelease(
                w.package, version, current_version, info.integrity, observed_at
            )
            if not dry:
                self.state.record_trivial(w.template, release)
                self.state.mark_seen(w.package, tag, version)
            return replace(found, status="trivial-recorded", folded=(*folded, release))

        prov = Provenance(
            package=w.package,
            tag=tag,
            old_version=current_version,
            new_version=version,
            integrity=info.integrity,
            tarball_url=info.tarball_url,
            registry=self.registry.base_url,
            observed_at=observed_at,
            run_url=self.settings.run_url,
            folded=folded,
        )
        plan = build_plan(
            w.template,
            rb.candidate,
            drift,
            prov,
            new_models=rb.new_models,
            problems=problems,
            auto_merge=self.settings.auto_merge,
            runbook=self.settings.runbook,
        )
        if self._compat is not None and rb.candidate.get("kind") == "client":
            self._say(w, f"compat run of {version}")
            try:
                section = self._compat(w.package, version)
            except DriftgateError as exc:
                section = f"### Compat run\n\nThe compat run of {version} failed: {exc}\n"
            plan = replace(plan, body=plan.body.rstrip() + "\n\n" + section)
        if dry or self.publisher is None:
            # A preview is printed, and printing a credential leaks it as surely as pushing it.
            secrets.gate({"title": plan.title, "body": plan.body, "template": plan.content})
            return replace(found, status="dry-run", pr=_planned(plan, None), folded=folded)
        self._say(w, f"publishing ({drift.severity}: {drift.summary() or 'version bump only'})")
        result = self.publisher.publish(plan)
        # A release the extractor could not fully read is looked at again next pass, so a fixed
        # extractor proposes the complete candidate; until then the same fingerprint is a no-op.
        if not problems and result.action != "skipped-edited":
            self.state.mark_seen(w.package, tag, version)
        return replace(found, status="pr", pr=_planned(plan, result), folded=folded)


def _extract(extractor: Extractor, files: PackageFiles) -> Extracted:
    """Run a (possibly third-party) extractor; one that raises is drift to look at, not a crash."""
    try:
        return extractor.extract(files, _manifest(files))
    except Exception as exc:  # the template keeps its facts; the PR says the extractor needs work
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return Extracted(
            problems=(f"extractor {extractor.name} failed: {type(exc).__name__}: {first}",)
        )


def _planned(plan: PullRequestPlan, result: PublishResult | None) -> PlannedPR:
    return PlannedPR(
        title=plan.title,
        labels=tuple(plan.labels),
        body=plan.body,
        fingerprint=plan.fingerprint,
        auto_merge=plan.auto_merge,
        action=result.action if result else None,
        number=result.number if result else None,
        url=result.url if result else None,
        notes=tuple(result.notes) if result else (),
    )
