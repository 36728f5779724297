"""Shared fixtures: fake upstreams, the gateway, the npm registry and the GitHub API."""

pytest_plugins = ["tests.fakes.npm_fixtures", "tests.fakes.github_fixtures"]
