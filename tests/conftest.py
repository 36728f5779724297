"""Shared fixtures: fake upstreams, the gateway, the npm registry and the GitHub API."""

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from driftgate.proxy.config import BackendConfig, Config
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

pytest_plugins = [
    "tests.fakes.npm_fixtures",
    "tests.fakes.github_fixtures",
    "tests.fakes.ping_server",
    "tests.fakes.redis_server",
    "tests.fakes.postgres_fixtures",
]


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    """A fresh fake Anthropic API on a free loopback port."""
    fake = FakeAnthropic().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A fresh fake OpenAI API on a free loopback port."""
    fake = FakeOpenAI().start()
    try:
        yield fake
    finally:
        fake.stop()


def _backend(item: Any) -> BackendConfig:
    if isinstance(item, BackendConfig):
        return item
    backend: BackendConfig = item.backend()  # a fake upstream: its default backend
    return backend


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start `driftgate.proxy.server.GatewayServer`s on free ports; each is stopped after the test.

    `gateway_factory(backends=[fake_anthropic.backend(models=["claude-*"]), fake_openai], api_key=...)`:
    backends are BackendConfigs or fakes (their default backend); keywords override Config fields;
    `app_kwargs` go to `create_app` (store, recorder, clock, env; env defaults to {}: hermetic).
    """
    from driftgate.proxy.server import GatewayServer

    started: list[Any] = []

    def factory(
        backends: Iterable[Any] = (), app_kwargs: dict[str, Any] | None = None, **overrides: Any
    ) -> Any:
        home = tmp_path / f"gateway{len(started)}"
        home.mkdir()
        overrides.setdefault("port", 0)
        config = Config(
            home=home,
            path=home / "config.toml",
            backends=tuple(map(_backend, backends)),
            **overrides,
        )
        server = GatewayServer(config, **{"env": {}, **(app_kwargs or {})})
        server.start()
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def gateway(
    gateway_factory: Callable[..., Any], fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> Any:
    """A gateway routing claude-* (and the aliases) to fake_anthropic and gpt-* to fake_openai."""
    return gateway_factory(
        backends=[fake_anthropic.backend(), fake_openai.backend(models=["gpt-*"])]
    )


@pytest.fixture
def anthropic_client(gateway: Any) -> Any:
    """The official Anthropic SDK pointed at `gateway` (no retries, so errors surface at once)."""
    import anthropic

    return anthropic.Anthropic(base_url=gateway.url, api_key="sk-client-anthropic", max_retries=0)


@pytest.fixture
def openai_client(gateway: Any) -> Any:
    """The official OpenAI SDK pointed at `gateway`'s /v1 (no retries)."""
    import openai

    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-client-openai", max_retries=0)
