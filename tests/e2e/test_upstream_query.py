"""A client's query string reaches the upstream as it was sent: still escaped, escaped once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.fakes.anthropic_upstream import FakeAnthropic


class RawQueryAnthropic(FakeAnthropic):
    """The fake Anthropic API, also noting each /v1/messages query string as it arrived."""

    def __init__(self) -> None:
        self.raw_queries: list[str] = []
        super().__init__()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        self.raw_queries.append(request.rel_url.raw_query_string)
        return await super()._messages(request)


@pytest.fixture
def raw_anthropic() -> Iterator[RawQueryAnthropic]:
    fake = RawQueryAnthropic().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.mark.parametrize(
    ("query", "decoded"),
    [
        ("beta=true&x=a%20b", {"beta": "true", "x": "a b"}),
        ("beta=true&y=1%2B1&z=a%26b&r=%C3%A9", {"beta": "true", "y": "1+1", "z": "a&b", "r": "é"}),
        ("beta=true&r=%c3%a9&s=%41", {"beta": "true", "r": "é", "s": "A"}),
    ],
    ids=["escaped-space", "escaped-plus-ampersand-utf8", "lower-case-and-needless-escapes"],
)
def test_query_string_reaches_the_upstream_intact(
    gateway_factory: Callable[..., Any],
    raw_anthropic: RawQueryAnthropic,
    query: str,
    decoded: dict[str, str],
) -> None:
    gw = gateway_factory(backends=[raw_anthropic])
    body = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "messages": [{"role": "user", "content": "q"}],
    }
    r = httpx.post(
        f"{gw.url}/v1/messages?{query}", json=body, headers={"x-api-key": "client"}, timeout=10.0
    )
    assert r.status_code == 200, r.text
    assert raw_anthropic.raw_queries == [query]
    assert raw_anthropic.last.query == decoded
