"""The platform facade: drift PRs (one bot branch and one open PR per template, idempotently), alert
issues, and the Actions workflow runs liveness reads and re-dispatches. Every watcher goes through it."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Literal

import git
import github
from github.Issue import Issue
from github.PullRequest import PullRequest
from github.Repository import Repository

from driftgate.watchers import alerts, secrets, workflow_runs
from driftgate.watchers.alerts import AlertPlan, AlertResult
from driftgate.watchers.errors import PublishError, RateLimited
from driftgate.watchers.github import api_errors
from driftgate.watchers.gitrepo import Checkout
from driftgate.watchers.pr_body import fingerprint_marker, fingerprint_of, truncate_body

LABEL_COLORS = {
    "drift": "5319e7",
    "drift:npm": "0e8a16",
    "drift:canary": "fbca04",
    "drift:liveness": "d93f0b",
    "breaking": "b60205",
}
LABEL_DESCRIPTIONS = {
    "drift": "Opened by driftgate: an upstream changed",
    "drift:npm": "Drift from a new npm release",
    "drift:canary": "A live upstream stopped behaving as its template says",
    "drift:liveness": "A driftgate watcher has not succeeded for too long",
    "breaking": "Drift that removes something (model, beta or tool)",
}
# A publish takes about a dozen calls; below this many left, stop before touching anything.
MIN_CALLS_LEFT = 15
CLOSED_PRS_CHECKED = 30


@dataclass(frozen=True)
class PullRequestPlan:
    """Everything one pull request needs, prepared before anything leaves the machine."""

    template: str
    path: str
    content: str
    title: str
    body: str
    labels: tuple[str, ...]
    commit_message: str
    fingerprint: str
    auto_merge: bool
    # The extractor could not read every fact: enough to open a PR to look at, never enough to
    # rewrite an open one (which may carry facts this candidate lacks).
    partial: bool = False
    # The bot branch; None: driftgate/<template>. The canary's fixes use their own branch so
    # they never rewrite an open npm drift PR of the same template.
    branch: str | None = None


@dataclass(frozen=True)
class PublishResult:
    """What publishing did; `notes` carries what went wrong without undoing it (auto-merge refused)."""

    action: Literal[
        "opened", "updated", "noop", "skipped-closed", "skipped-edited", "skipped-partial"
    ]
    number: int | None
    url: str | None
    notes: tuple[str, ...] = ()


def is_repo_name(repo: object) -> bool:
    """Whether `repo` is a GitHub OWNER/NAME: exactly one slash, both sides non-empty."""
    return isinstance(repo, str) and repo.count("/") == 1 and all(repo.split("/"))


def branch_for(template: str) -> str:
    """The bot branch that carries `template`'s drift."""
    return f"driftgate/{template}"


def _slug(repo: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", repo.replace("/", "__"))


class Publisher:
    """Turns a PullRequestPlan into a branch, a commit and one open pull request."""

    def __init__(
        self,
        *,
        repo: str,
        remote: str | None,
        workdir: Path,
        github: github.Github,
        token: str | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not is_repo_name(repo):
            raise PublishError(f"--repo must be OWNER/NAME, got {repo!r}")
        self.repo_name = repo
        self.github = github
        self.sleep = sleep
        # No remote given: the clone URL the API returns for the repository (as Renovate does),
        # asked at the first git operation.
        self.checkout = Checkout(
            remote if remote is not None else self._clone_url, workdir / _slug(repo), token
        )
        # Fetched once per Publisher (one pass): every template's PR and the template reader use it.
        self._repo: Repository | None = None
        self._labels: set[str] | None = None
        self._alerts: dict[str, dict[str, Issue]] = {}

    def repository(self) -> Repository:
        """The target repository (one API call per Publisher); GitHub errors pass through raw."""
        if self._repo is None:
            self._repo = self.github.get_repo(self.repo_name)
        return self._repo

    def _clone_url(self) -> str:
        with api_errors("reading the repository's clone URL"):
            return str(self.repository().clone_url)

    def publish(self, plan: PullRequestPlan) -> PublishResult:
        """Open, update or leave alone the template's pull request; the secret gate runs first."""
        secrets.gate(
            {
                "template content": plan.content,
                "commit message": plan.commit_message,
                "pull request title": plan.title,
                "pull request body": plan.body,
            }
        )
        body = truncate_body(plan.body) + "\n\n" + fingerprint_marker(plan.fingerprint) + "\n"
        branch = plan.branch or branch_for(plan.template)
        with api_errors("reading the repository"):
            repo = self.repository()
            self._check_rate_limit()
            head = f"{repo.owner.login}:{branch}"
            open_prs = list(repo.get_pulls(state="open", head=head))
        if open_prs:
            pr = min(open_prs, key=lambda p: p.number)
            if fingerprint_of(pr.body or "") == plan.fingerprint:
                return PublishResult("noop", pr.number, pr.html_url)
            if plan.partial:
                note = (
                    "not updated: the extractor could not read every fact of this release; "
                    "the open PR is not rewritten from incomplete information"
                )
                return PublishResult("skipped-partial", pr.number, pr.html_url, (note,))
            local = self.checkout.sync()
            others = self.checkout.others_commits(local, repo.default_branch, branch)
            if others:
                # Like Renovate: a branch people pushed to is theirs now; never force-push over it.
                note = (
                    f"not updated: {branch} has commits by {', '.join(others)}; "
                    "merge or close the PR to let the bot propose the newer drift"
                )
                told = [note]
                if self._tell_once(pr, plan, branch, local, others):
                    told.append(f"commented on #{pr.number} with the newer fingerprint and diff")
                return PublishResult("skipped-edited", pr.number, pr.html_url, tuple(told))
            if not self._push(repo, plan, branch, local):
                return PublishResult("noop", pr.number, pr.html_url)
            with api_errors(f"updating pull request #{pr.number}"):
                pr.edit(title=plan.title, body=body)
                self._sync_labels(repo, pr, plan.labels)
            notes = self._auto_merge(pr, plan)
            return PublishResult("updated", pr.number, pr.html_url, notes)
        with api_errors("reading closed pull requests"):
            closed = repo.get_pulls(state="closed", head=head, sort="created", direction="desc")
            for old in islice(closed, CLOSED_PRS_CHECKED):
                if not old.merged and fingerprint_of(old.body or "") == plan.fingerprint:
                    return PublishResult("skipped-closed", old.number, old.html_url)
        if not self._push(repo, plan, branch):
            return PublishResult("noop", None, None)
        with api_errors("opening the pull request"):
            pr = repo.create_pull(
                base=repo.default_branch, head=branch, title=plan.title, body=body
            )
            self._sync_labels(repo, pr, plan.labels)
        notes = self._auto_merge(pr, plan)
        return PublishResult("opened", pr.number, pr.html_url, notes)

    def _tell_once(
        self, pr: PullRequest, plan: PullRequestPlan, branch: str, local: git.Repo,
        others: list[str],
    ) -> bool:  # fmt: skip
        """Comment on `pr` with the newer candidate's fingerprint and diff, once per fingerprint."""
        marker = f"<!-- driftgate-newer: {plan.fingerprint} -->"
        with api_errors(f"reading the comments of #{pr.number}"):
            if any(marker in (c.body or "") for c in pr.get_issue_comments()):
                return False
        try:
            current = str(local.git.show(f"refs/remotes/origin/{branch}:{plan.path}")) + "\n"
        except git.GitCommandError:
            current = ""
        diff = "".join(
            difflib.unified_diff(
                current.splitlines(keepends=True), plan.content.splitlines(keepends=True),
                f"a/{plan.path} ({branch})", f"b/{plan.path} (newer drift)",
            )
        )  # fmt: skip
        body = "\n".join([
            f"driftgate found newer drift for `{plan.template}` (fingerprint `{plan.fingerprint}`) "
            f"but did not push it: `{branch}` has commits by {', '.join(others)}, and a branch "
            "a person pushed to is never force-pushed over.",
            "", "```diff", truncate_body(diff, 50_000).rstrip() or "(no change to the file)", "```",
            "", "To hand the branch back to the bot: merge or close this PR, or delete the branch "
            f"(`git push origin --delete {branch}`); the next run then proposes the newer drift.",
            "", marker,
        ])  # fmt: skip
        secrets.gate({"pull request comment": body})
        with api_errors(f"commenting on #{pr.number}"):
            pr.create_issue_comment(body)
        return True

    def _check_rate_limit(self) -> None:
        remaining, limit = self.github.rate_limiting
        if 0 <= remaining < MIN_CALLS_LEFT and limit > 0:
            reset = time.strftime("%H:%M:%S UTC", time.gmtime(self.github.rate_limiting_resettime))
            raise RateLimited(
                f"GitHub rate limit nearly used up ({remaining}/{limit} left, resets {reset}); "
                "nothing was changed"
            )

    def _push(
        self, repo: Repository, plan: PullRequestPlan, branch: str, local: git.Repo | None = None
    ) -> bool:
        """Commit the template on the bot branch and force-push it; False when it changes nothing."""
        local = local or self.checkout.sync()
        sha = self.checkout.commit_file(
            local,
            base=repo.default_branch,
            branch=branch,
            path=plan.path,
            content=plan.content,
            message=plan.commit_message,
        )
        if sha is None:
            return False
        self.checkout.push(local, branch)
        return True

    # -- alert issues ------------------------------------------------------------------------
    def open_alerts(self, label: str) -> frozenset[str]:
        """The keys of the open alert issues carrying `label` (read once per Publisher)."""
        return frozenset(self._open_alerts(label))

    def _open_alerts(self, label: str) -> dict[str, Issue]:
        if label not in self._alerts:
            with api_errors(f"reading open {label} issues"):
                repo = self.repository()
                self._check_rate_limit()
                self._alerts[label] = alerts.open_alerts(repo, label)
        return self._alerts[label]

    def raise_alert(self, plan: AlertPlan) -> AlertResult:
        """Open the alert issue, comment on it when seen again, rewrite it when it changed."""
        secrets.gate(
            {
                "issue title": plan.title,
                "issue body": plan.body,
                "issue comment": plan.repeat_comment,
            }
        )
        existing = self._open_alerts(plan.label).get(plan.key)
        with api_errors(f"raising alert {plan.key}"):
            repo = self.repository()
            result = alerts.raise_alert(repo, plan, existing, self._ensure_labels)
        if result.action == "opened" and result.number is not None:
            with api_errors(f"reading alert {plan.key}"):
                self._alerts[plan.label][plan.key] = repo.get_issue(result.number)
        return result

    def clear_alert(self, key: str, label: str, comment: str) -> AlertResult:
        """Close the open alert issue `key` (if any) with `comment`."""
        secrets.gate({"issue comment": comment})
        existing = self._open_alerts(label).pop(key, None)
        with api_errors(f"closing alert {key}"):
            return alerts.clear_alert(existing, comment)

    # -- Actions -----------------------------------------------------------------------------
    def workflow_history(self, workflow: str) -> workflow_runs.WorkflowHistory | None:
        """The last successful run of `workflow` (a file name) and any re-dispatch since;
        None when the repository has no such workflow."""
        with api_errors(f"reading the runs of {workflow}"):
            repo = self.repository()
            self._check_rate_limit()
            return workflow_runs.history(repo, workflow)

    def dispatch_workflow(self, workflow: str) -> None:
        """Run `workflow` now on the default branch (workflow_dispatch)."""
        with api_errors(f"dispatching {workflow}"):
            workflow_runs.dispatch(self.repository(), workflow)

    # -- labels ------------------------------------------------------------------------------
    def _ensure_labels(self, repo: Repository, wanted: tuple[str, ...]) -> None:
        if self._labels is None:
            self._labels = {label.name for label in repo.get_labels()}
        for name in wanted:
            if name not in self._labels:
                repo.create_label(
                    name,
                    LABEL_COLORS.get(name, "ededed"),
                    LABEL_DESCRIPTIONS.get(name, "driftgate"),
                )
                self._labels.add(name)

    def _sync_labels(self, repo: Repository, pr: PullRequest, wanted: tuple[str, ...]) -> None:
        self._ensure_labels(repo, wanted)
        on_pr = {label.name for label in pr.labels}
        missing = [name for name in wanted if name not in on_pr]
        if missing:
            pr.add_to_labels(*missing)
        # Only the bot's own severity label is taken off; labels people added stay.
        if "breaking" in on_pr and "breaking" not in wanted:
            pr.remove_from_labels("breaking")

    def _auto_merge(self, pr: PullRequest, plan: PullRequestPlan) -> tuple[str, ...]:
        if plan.auto_merge:
            refused = _refusal(
                f"enabling auto-merge on #{pr.number}",
                lambda: pr.enable_automerge(merge_method="SQUASH"),
            )
            return (f"auto-merge not enabled: {refused}",) if refused else ()
        if pr.auto_merge is None:
            return ()
        # An update that made the drift breaking (or partial) must not ride on an auto-merge
        # an earlier, additive version of the PR switched on.
        refused = _refusal(f"disabling auto-merge on #{pr.number}", pr.disable_automerge)
        if refused:
            return (f"auto-merge still enabled, disable it by hand: {refused}",)
        return ("auto-merge disabled: this drift is not eligible any more",)


def _refusal(action: str, call: Callable[[], object]) -> str | None:
    """Run an optional GitHub call: its refusal as a sentence (the PR stands), or None; rate limits stop the run."""
    try:
        with api_errors(action):
            call()
    except RateLimited:
        raise
    except PublishError as exc:
        return str(exc)
    return None
