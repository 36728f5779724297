"""A stateful fake GitHub REST API on loopback, checked against GitHub's OpenAPI description.

PyGithub talks to it over HTTP (`FakeGitHub.url` is the API base, Enterprise style `/api/v3`).
Pull requests live on branches of a real bare git repository; merging really merges there.
Tests steer it in Python: `close_pull`, `merge_pull`, `fail_next`, `set_rate_limit`, `requests`,
and for Actions `add_workflow` / `add_run` (runs at chosen times) and `dispatches`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.fakes import github_routes_actions, github_routes_issues
from tests.fakes import github_shapes as shapes
from tests.fakes.github_git import OriginRepo
from tests.fakes.github_openapi import ResponseShapeError, check_response
from tests.fakes.github_routes import ROUTES, Reply
from tests.fakes.server_thread import ServerThread

# Imported for their @route registrations.
_ROUTE_MODULES = (github_routes_actions, github_routes_issues)
API_PREFIX = "/api/v3"
GRAPHQL_PATH = "/api/graphql"


@dataclass
class Failure:
    """A scripted failure for the next matching requests."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int
    method: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered (the Authorization value is never kept)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    authenticated: bool
    json: Any = None


@dataclass
class RateLimit:
    """The core rate-limit window the fake reports on every response."""

    limit: int = 5000
    remaining: int = 5000
    reset: int = field(default_factory=lambda: int(time.time()) + 3600)

    def headers(self) -> dict[str, str]:
        """X-RateLimit-* headers for the current window."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
            "X-RateLimit-Used": str(self.limit - max(self.remaining, 0)),
            "X-RateLimit-Resource": "core",
        }


class FakeGitHub:
    """The fake API's state and its Python control surface."""

    def __init__(
        self,
        origin: Path,
        scratch: Path,
        *,
        owner: str = "driftgate-test",
        name: str = "templates",
        default_branch: str = "main",
    ) -> None:
        self.origin = OriginRepo(origin, scratch)
        self.owner = owner
        self.name = name
        self.default_branch = default_branch
        # What the repository's `clone_url` says; None: GitHub's, on the fake's web host.
        self.clone_url: str | None = None
        self.pulls: dict[int, shapes.FakePull] = {}
        self.labels: dict[str, dict[str, Any]] = {}
        self.issues: dict[int, shapes.FakeIssue] = {}
        self.workflows: dict[str, shapes.FakeWorkflow] = {}
        self.runs: list[shapes.FakeRun] = []
        self.dispatches: list[tuple[str, str, dict[str, Any]]] = []
        self.requests: list[RequestRecord] = []
        self.validation_errors: list[str] = []
        self.rate = RateLimit()
        self.lock = threading.RLock()
        self._failures: list[Failure] = []
        self._next_id = 1
        self._server = ServerThread(self._app())

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeGitHub:
        """Serve on 127.0.0.1 and a free port."""
        self._server.start()
        self.urls = shapes.Urls(
            api=self.url, web=self._server.url, owner=self.owner, name=self.name
        )
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    @property
    def url(self) -> str:
        """The API base to give PyGithub (`--github-api-url`)."""
        return self._server.url + API_PREFIX

    @property
    def full_name(self) -> str:
        """OWNER/NAME of the one repository."""
        return f"{self.owner}/{self.name}"

    # -- control -----------------------------------------------------------------------------
    def new_id(self) -> int:
        """A fresh id (PR numbers, labels, comments share one counter, as issues and PRs do)."""
        with self.lock:
            self._next_id += 1
            return self._next_id

    def open_pulls(self, head: str | None = None) -> list[shapes.FakePull]:
        """Open pull requests, optionally only those from branch `head`."""
        with self.lock:
            return [
                p
                for p in self.pulls.values()
                if p.state == "open" and (head is None or p.head == head)
            ]

    def close_pull(self, number: int) -> None:
        """Close a pull request without merging (a maintainer said no)."""
        with self.lock:
            pr = self.pulls[number]
            pr.state, pr.closed_at, pr.updated_at = "closed", shapes.now_iso(), shapes.now_iso()

    def merge_pull(self, number: int) -> str:
        """Merge a pull request into its base in the bare origin; returns the merge commit."""
        with self.lock:
            pr = self.pulls[number]
            if pr.state != "open":
                raise ValueError(f"pull request #{number} is {pr.state}")
            sha = self.origin.merge(pr.base, pr.head, f"Merge pull request #{number}: {pr.title}")
            stamp = shapes.now_iso()
            pr.state, pr.merged, pr.merged_at, pr.closed_at = "closed", True, stamp, stamp
            pr.merge_commit_sha, pr.updated_at = sha, stamp
            return sha

    def fail_next(
        self,
        status: int,
        headers: dict[str, str] | None = None,
        times: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next `times` requests (optionally only METHOD / paths containing `path`) with an error."""
        headers = dict(headers or {})
        if message is None:
            if status in (403, 429) and headers.get("X-RateLimit-Remaining") == "0":
                message = "API rate limit exceeded for user ID 2."
            elif status in (403, 429):
                message = "You have exceeded a secondary rate limit. Please wait a few minutes."
            else:
                message = "Server Error"
        with self.lock:
            self._failures.append(
                Failure(
                    status, headers, shapes.error(message), times, method and method.upper(), path
                )
            )

    def open_issues(self, label: str | None = None) -> list[shapes.FakeIssue]:
        """Open issues (not pull requests), optionally only those carrying `label`."""
        with self.lock:
            return [
                i
                for i in self.issues.values()
                if i.state == "open" and (label is None or label in i.labels)
            ]

    def add_workflow(self, path: str, name: str | None = None) -> shapes.FakeWorkflow:
        """Declare `.github/workflows/FILE` (by its path); returns it."""
        with self.lock:
            wf = shapes.FakeWorkflow(self.new_id(), name or path.rsplit("/", 1)[-1], path)
            self.workflows[path] = wf
            return wf

    def add_run(
        self,
        path: str,
        *,
        conclusion: str | None = "success",
        status: str = "completed",
        event: str = "schedule",
        ago: timedelta = timedelta(0),
        branch: str = "main",
    ) -> shapes.FakeRun:
        """A run of workflow `path` created `ago` before now (the workflow is declared if new)."""
        with self.lock:
            wf = self.workflows.get(path) or self.add_workflow(path)
            when = (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")
            number = sum(1 for r in self.runs if r.workflow is wf) + 1
            run = shapes.FakeRun(self.new_id(), wf, event, status, conclusion, when, branch, number)
            self.runs.append(run)
            return run

    def set_rate_limit(self, remaining: int, *, reset_in: int = 3600) -> None:
        """Set what X-RateLimit-Remaining reports; at 0 every request gets a primary rate-limit 403."""
        with self.lock:
            self.rate.remaining = remaining
            self.rate.reset = int(time.time()) + reset_in

    def writes(self) -> list[RequestRecord]:
        """The requests that could change state (anything but GET)."""
        return [r for r in self.requests if r.method != "GET"]

    # -- HTTP --------------------------------------------------------------------------------
    def _app(self) -> web.Application:
        app = web.Application()
        for method, spec_path, handler in ROUTES:
            app.router.add_route(
                method,
                API_PREFIX + spec_path.replace("{ref}", "{ref:.+}"),
                self._wrap(method, spec_path, handler),
            )
        app.router.add_route("POST", GRAPHQL_PATH, self._wrap("POST", None, graphql))
        return app

    def _take_failure(self, method: str, path: str) -> Failure | None:
        for failure in self._failures:
            if failure.method not in (None, method) or (failure.path and failure.path not in path):
                continue
            failure.times -= 1
            if failure.times <= 0:
                self._failures.remove(failure)
            return failure
        return None

    def _wrap(
        self, method: str, spec_path: str | None, handler: Callable[..., Reply]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            raw = await request.text()
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = None
            with self.lock:
                status, body, headers = self._answer(request, method, spec_path, handler, payload)
                self.requests.append(
                    RequestRecord(
                        method,
                        request.path,
                        dict(request.query),
                        status,
                        "Authorization" in request.headers,
                        payload,
                    )
                )
            return (
                web.json_response(body, status=status, headers=headers)
                if body is not None
                else web.Response(status=status, headers=headers)
            )

        return serve

    def _answer(
        self,
        request: web.Request,
        method: str,
        spec_path: str | None,
        handler: Callable[..., Reply],
        payload: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"X-GitHub-Request-Id": f"FAKE:{len(self.requests)}"}
        failure = self._take_failure(method, request.path)
        self.rate.remaining -= 1
        if failure is not None:
            status, body = failure.status, failure.body
            headers |= self.rate.headers() | failure.headers
        elif self.rate.remaining < 0:
            status, body = 403, shapes.error("API rate limit exceeded for user ID 2.")
            headers |= self.rate.headers()
        elif method != "GET" and "Authorization" not in request.headers:
            status, body = 401, shapes.error("Requires authentication")
            headers |= self.rate.headers()
        else:
            status, body = handler(self, dict(request.match_info), dict(request.query), payload)
            headers |= self.rate.headers()
        if spec_path is not None and body is not None:
            try:
                check_response(spec_path, method, status, body)
            except ResponseShapeError as exc:
                self.validation_errors.append(str(exc))
                status, body = 500, shapes.error(f"fake GitHub sent an invalid response: {exc}")
        return status, body, headers


def graphql(gh: FakeGitHub, _match: dict[str, str], _query: dict[str, str], payload: Any) -> Reply:
    """The GraphQL mutations driftgate uses: enable/disablePullRequestAutoMerge."""
    query = str((payload or {}).get("query", ""))
    variables = (payload or {}).get("variables") or {}
    name = next(
        (m for m in ("enablePullRequestAutoMerge", "disablePullRequestAutoMerge") if m in query),
        None,
    )
    if name is None:
        return 200, {
            "errors": [{"message": "the fake GitHub only knows enable/disablePullRequestAutoMerge"}]
        }
    data = variables.get("input") or {}
    for pr in gh.pulls.values():
        if pr.node_id == data.get("pullRequestId") and pr.state == "open":
            pr.auto_merge = (
                {
                    "enabled_by": shapes.user(gh.urls),
                    "merge_method": str(data.get("mergeMethod", "MERGE")).lower(),
                    "commit_title": data.get("commitHeadline") or pr.title,
                    "commit_message": data.get("commitBody") or "",
                }
                if name.startswith("enable")
                else None
            )
            actor = {"login": shapes.BOT_LOGIN, "avatarUrl": "", "resourcePath": "", "url": ""}
            return 200, {"data": {name: {"actor": actor, "clientMutationId": None}}}
    return 200, {"errors": [{"type": "NOT_FOUND", "message": "Could not resolve to a PullRequest"}]}
