"""Both transports behind the whole gateway: official SDKs through fast and aiohttp backends,
and an answer past max_response_bytes (a gzip bomb) cut off with an error in the client's dialect."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from driftgate.proxy.app import GATEWAY_KEY
from driftgate.proxy.config import BackendConfig
from driftgate.proxy.upstream.aiohttp_transport import AiohttpTransport
from driftgate.proxy.upstream.client import UpstreamClient
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server_thread import ServerThread

Factory = Callable[..., Any]
SONNET = "claude-sonnet-4-6"
MSG = [{"role": "user", "content": "hello"}]
LIMIT = 1 << 20
BOMB = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB in ~64 KiB
KINDS = ("fast", "aiohttp")
CLASSES = {"fast": UpstreamClient, "aiohttp": AiohttpTransport}


@pytest.mark.parametrize("transport", KINDS)
def test_sdks_through_each_transport(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI, transport: str
) -> None:
    gw = gateway_factory(
        backends=[
            fake_anthropic.backend(transport=transport),
            fake_openai.backend(models=("gpt-*",), transport=transport),
        ]
    )
    assert gw.app is not None
    used = {type(t) for t in gw.app[GATEWAY_KEY].transports.values()}
    assert used == {CLASSES[transport]}
    ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client", max_retries=0)
    oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
    msg = ant.messages.create(model=SONNET, max_tokens=32, messages=MSG)  # type: ignore[arg-type]
    assert msg.content and msg.usage.output_tokens > 0
    with ant.messages.stream(model=SONNET, max_tokens=32, messages=MSG) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.stop_reason == "end_turn"
    chat = oai.chat.completions.create(model="gpt-4o", messages=MSG)  # type: ignore[arg-type]
    assert chat.choices[0].message.content
    chunks = list(oai.chat.completions.create(model="gpt-4o", messages=MSG, stream=True))  # type: ignore[arg-type]
    assert chunks and chunks[-1].choices[0].finish_reason == "stop"
    crossed = oai.chat.completions.create(model=SONNET, messages=MSG)  # type: ignore[arg-type]
    assert crossed.choices[0].message.content  # OpenAI client, Anthropic backend


def _bomb_upstream() -> web.Application:
    async def answer(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        ctype = "text/event-stream" if body.get("stream") else "application/json"
        return web.Response(body=BOMB, headers={"Content-Encoding": "gzip", "Content-Type": ctype})

    app = web.Application()
    app.router.add_post("/v1/messages", answer)
    app.router.add_post("/chat/completions", answer)
    return app


@pytest.mark.parametrize("transport", KINDS)
def test_gzip_bomb_is_an_error_in_each_dialect(gateway_factory: Factory, transport: str) -> None:
    with ServerThread(_bomb_upstream()) as upstream:
        common: dict[str, Any] = {"key": "k", "transport": transport, "max_response_bytes": LIMIT}
        gw = gateway_factory(
            backends=[
                BackendConfig(name="ant", kind="anthropic", base_url=upstream.url, **common),
                BackendConfig(
                    name="oai", kind="openai", base_url=upstream.url, models=("gpt-*",), **common
                ),
            ]
        )
        ant = anthropic.Anthropic(base_url=gw.url, api_key="sk-client", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as ant_err:
            ant.messages.create(model=SONNET, max_tokens=32, messages=MSG)  # type: ignore[arg-type]
        assert ant_err.value.status_code == 502
        assert ant_err.value.body["error"]["type"] == "api_error"  # type: ignore[index]
        assert "max_response_bytes" in ant_err.value.body["error"]["message"]  # type: ignore[index]

        oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="sk-client", max_retries=0)
        with pytest.raises(openai.APIStatusError) as oai_err:
            oai.chat.completions.create(model="gpt-4o", messages=MSG)  # type: ignore[arg-type]
        assert oai_err.value.status_code == 502
        assert "max_response_bytes" in oai_err.value.message

        # a stream: the status is already sent, so it ends with the dialect's error event
        body = {"model": "gpt-4o", "messages": MSG, "stream": True}
        with httpx.stream("POST", gw.url + "/v1/chat/completions", json=body, timeout=30) as r:
            raw = b"".join(r.iter_raw())
        if r.status_code == 200:
            assert b"max_response_bytes" in raw and b'"error"' in raw
        else:
            assert r.status_code == 502 and b"max_response_bytes" in raw
