"""What the `driftgate top` tests and the screenshot script share: SDK traffic and bounded waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai
from textual.pilot import Pilot

SECRET_PROMPT = "the launch code is tangerine-47"  # must never show in the view


async def until(
    pilot: Pilot[Any], check: Callable[[], Any], what: str, timeout: float = 20.0
) -> Any:
    """Let the app run until `check()` is truthy; fail saying `what` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)


def send_traffic(url: str) -> None:
    """Requests through the gateway with the official SDKs: Anthropic, OpenAI Chat, a stream."""
    ant = anthropic.Anthropic(base_url=url, api_key="sk-client-anthropic", max_retries=0)
    ant.messages.create(
        model="sonnet",
        max_tokens=64,
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        extra_headers={"x-claude-code-session-id": "sess-top-1"},
    )
    ant.messages.create(
        model="claude-haiku-4-5",
        max_tokens=32,
        messages=[{"role": "user", "content": SECRET_PROMPT}],
    )
    oai = openai.OpenAI(base_url=url + "/v1", api_key="sk-client-openai", max_retries=0)
    oai.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": SECRET_PROMPT}]
    )
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": SECRET_PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass


async def traffic(url: str) -> None:
    """send_traffic off the app's loop (the SDK clients block)."""
    await asyncio.to_thread(send_traffic, url)


def expensive_request(url: str) -> Any:
    """One Anthropic request (the caller makes the fake report enough cache writes to cost $1.50)."""
    ant = anthropic.Anthropic(base_url=url, api_key="sk-client-anthropic", max_retries=0)
    return ant.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    )
