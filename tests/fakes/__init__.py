"""Fake servers for tests: upstream LLM APIs, the npm registry, the GitHub API."""

from tests.fakes.behaviour import Behaviour, RecordedRequest

__all__ = ["Behaviour", "RecordedRequest"]
