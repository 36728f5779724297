"""Where GitHub is: web, clone and Actions run URLs from the API URL and the environment."""

from __future__ import annotations

from driftgate.watchers.github import actions_run_url, default_git_remote, server_url_for


def test_actions_run_url_needs_the_run_id_and_the_repository() -> None:
    env = {
        "GITHUB_RUN_ID": "7",
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_SERVER_URL": "https://ghe.corp",
    }
    assert actions_run_url(env) == "https://ghe.corp/o/r/actions/runs/7"
    assert actions_run_url({"GITHUB_RUN_ID": "7", "GITHUB_REPOSITORY": "o/r"}) == (
        "https://github.com/o/r/actions/runs/7"
    )
    assert actions_run_url({"GITHUB_RUN_ID": "7"}) is None
    assert actions_run_url({}) is None


def test_server_and_clone_urls_follow_the_api_url() -> None:
    assert server_url_for("https://api.github.com") == "https://github.com"
    assert server_url_for("https://ghe.corp/api/v3/") == "https://ghe.corp"
    assert default_git_remote("o/r", server_url_for("https://ghe.corp/api/v3")) == (
        "https://ghe.corp/o/r.git"
    )
    assert default_git_remote("o/r", "https://github.com/") == "https://github.com/o/r.git"
