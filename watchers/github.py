"""GitHub: where it is (API, web, clone and Actions URLs) and the PyGithub client with its retry policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import github
import requests
from github import Auth, GithubRetry
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from driftgate.watchers.errors import PublishError, RateLimited
from driftgate.watchers.network_errors import in_words

DEFAULT_API_URL = "https://api.github.com"
USER_AGENT = "driftgate-bot"
# Secondary limits ask for about a minute; a primary reset an hour away is not worth waiting for
# in an hourly job, so past this the run stops with a one-line reason instead.
SECONDARY_RATE_WAIT = 60.0
MAX_RATE_LIMIT_WAIT = 300.0
# GitHub's guidance for content-creating requests is one per second (secondary limits).
MIN_WRITE_INTERVAL = 1.0


def actions_run_url(env: Mapping[str, str]) -> str | None:
    """The GitHub Actions run this process belongs to, when GITHUB_RUN_ID and friends are set."""
    run_id = env.get("GITHUB_RUN_ID")
    repo = env.get("GITHUB_REPOSITORY")
    if not run_id or not repo:
        return None
    server = env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    return f"{server}/{repo}/actions/runs/{run_id}"


def server_url_for(api_url: str) -> str:
    """The web URL for a REST API URL: api.github.com -> github.com, GHE /api/v3 -> its host."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc == "api.github.com":
        return "https://github.com"
    path = parts.path[: -len("/api/v3")] if parts.path.endswith("/api/v3") else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def default_git_remote(repo: str, server_url: str) -> str:
    """The HTTPS clone URL of OWNER/NAME on the given web server (github.com or an Enterprise host)."""
    return f"{server_url.rstrip('/')}/{repo}.git"


class DriftgateRetry(GithubRetry):
    """GithubRetry (5xx, 403/429 rate limits, Retry-After, X-RateLimit-Reset) with a sleep seam."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep, **kwargs: Any) -> None:
        self._sleep_fn = sleep
        kwargs.setdefault("status_forcelist", [429, *range(500, 600)])
        super().__init__(**kwargs)

    def new(self, **kw: Any) -> DriftgateRetry:
        """A copy for the next attempt that keeps the sleep seam."""
        retry: DriftgateRetry = super().new(**kw)
        retry._sleep_fn = self._sleep_fn
        return retry

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        """Wait Retry-After when sent, else the computed backoff, through the injected sleep."""
        wait: float | None = None
        if self.respect_retry_after_header and response is not None:
            wait = self.get_retry_after(response)
        if wait is None:
            wait = self.get_backoff_time()
        if wait > 0:
            self._sleep_fn(wait)


def build_retry(sleep: Callable[[float], None] = time.sleep) -> DriftgateRetry:
    """Five attempts, exponential backoff from 1 s, rate-limit waits capped at MAX_RATE_LIMIT_WAIT."""
    return DriftgateRetry(
        sleep=sleep,
        # PyGithub retries GET and POST; PATCH (editing the PR body, title) is idempotent too.
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"GET", "POST", "PATCH"},
        total=5,
        backoff_factor=1.0,
        backoff_max=120.0,
        secondary_rate_wait=SECONDARY_RATE_WAIT,
        max_rate_limit_wait=MAX_RATE_LIMIT_WAIT,
    )


def build_github(
    token: str | None,
    api_url: str = DEFAULT_API_URL,
    *,
    sleep: Callable[[float], None] = time.sleep,
    min_write_interval: float = MIN_WRITE_INTERVAL,
) -> github.Github:
    """A PyGithub client for `api_url` (GitHub Enterprise: `https://HOST/api/v3`); anonymous without a token."""
    return github.Github(
        auth=Auth.Token(token) if token else None,
        base_url=api_url.rstrip("/"),
        user_agent=USER_AGENT,
        timeout=30,
        retry=build_retry(sleep),
        seconds_between_requests=None,
        seconds_between_writes=min_write_interval or None,
    )


def _message(exc: github.GithubException) -> str:
    data = exc.data
    if isinstance(data, dict):
        message = str(data.get("message") or "")
        errors = data.get("errors")
        if isinstance(errors, list) and errors:
            details = [
                str(e.get("message") or e) if isinstance(e, dict) else str(e) for e in errors
            ]
            message += " (" + "; ".join(details[:3]) + ")"
        return message or "no message"
    return str(data)[:200] if data else "no message"


@contextmanager
def api_errors(action: str) -> Iterator[None]:
    """Turn PyGithub and transport errors met while doing `action` into one-line PublishErrors."""
    try:
        yield
    except (github.RateLimitExceededException, github.RateLimitExceededExceedsMaxWait) as exc:
        raise RateLimited(f"{action}: GitHub rate limit exceeded: {_message(exc)}") from exc
    except github.GithubException as exc:
        raise PublishError(f"{action}: GitHub answered {exc.status}: {_message(exc)}") from exc
    except requests.exceptions.RetryError as exc:
        raise PublishError(f"{action}: GitHub kept failing after retries") from exc
    except requests.exceptions.RequestException as exc:
        raise PublishError(f"{action}: GitHub API unreachable: {in_words(exc)}") from exc
