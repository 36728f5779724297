"""The /v1/ endpoints the gateway does not serve itself, forwarded as sent through a real gateway
to the fakes with the official SDKs: embeddings, files, Responses retrieval, Message Batches."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web

from driftgate.proxy.analytics import Recorder
from driftgate.proxy.config import BackendConfig
from driftgate.proxy.guard.settings import GuardSettings
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server_thread import ServerThread, closed_port

Factory = Callable[..., Any]
CLIENT_KEY = "sk-client-own-key-never-upstream"
EMBED = "text-embedding-3-small"
USER = [{"role": "user", "content": "hello"}]


def oai(gw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key=CLIENT_KEY, max_retries=0)


def ant(gw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key=CLIENT_KEY, max_retries=0)


def _rows(recorder: Recorder) -> list[tuple[Any, ...]]:
    recorder.flush()
    sql = "SELECT endpoint, status, backend, model_requested, input_tokens FROM usage ORDER BY id"
    return recorder.query(lambda db: db.execute(sql).fetchall(), [])


def test_embeddings_through_the_openai_sdk_with_the_backends_key(
    gateway_factory: Factory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, tmp_path: Path
) -> None:
    recorder = Recorder(tmp_path / "usage.sqlite3")
    gw = gateway_factory(backends=[fake_anthropic, fake_openai], app_kwargs={"recorder": recorder})
    raw = oai(gw).embeddings.with_raw_response.create(model=EMBED, input=["one two", "three"])
    got = raw.parse()
    assert [len(d.embedding) for d in got.data] == [8, 8]  # base64 asked by the SDK, decoded
    assert got.usage.prompt_tokens > 0
    assert raw.headers["x-driftgate-backend"] == "openai"
    assert raw.headers["x-request-id"].startswith("req_fake")  # relayed as for completions
    seen = fake_openai.last
    assert seen.path == "/v1/embeddings" and seen.json["encoding_format"] == "base64"
    assert seen.headers["authorization"] == "Bearer sk-openai-fake-test-key"
    assert CLIENT_KEY not in str(dict(seen.headers))
    floats = oai(gw).embeddings.create(model=EMBED, input="x", encoding_format="float")
    assert len(floats.data[0].embedding) == 8
    deadline = time.monotonic() + 10  # records are batched after the answers: a bounded wait
    counted = 'driftgate_requests_total{backend="openai",model="other",status="200"} 2.0'
    while counted not in (text := httpx.get(gw.url + "/metrics").text):  # "other": unknown model
        assert time.monotonic() < deadline, (
            f"the forwarded requests never reached /metrics:\n{text}"
        )
        time.sleep(0.02)
    gw.stop()
    rows = _rows(recorder)
    recorder.close()
    assert rows[0][:4] == ("other:embeddings", 200, "openai", EMBED)
    assert rows[0][4] == got.usage.prompt_tokens  # the answer's usage, read after the answer


def test_the_fakes_refuse_what_the_real_api_refuses(
    gateway_factory: Factory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic, fake_openai])
    with pytest.raises(openai.BadRequestError, match="input"):
        oai(gw).embeddings.create(model=EMBED, input=[])
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        oai(gw).embeddings.create(model=EMBED, input="x", extra_body={"temprature": 1})
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        ant(gw).messages.batches.create(
            requests=[
                {
                    "custom_id": "a b",
                    "params": {"model": "claude-sonnet-4-6", "max_tokens": 5, "messages": USER},
                }
            ]
        )


def test_files_upload_list_content_delete_through_the_sdk(
    gateway_factory: Factory, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai])
    client = oai(gw)
    data = b"".join(b'{"custom_id": "r%d"}\n' % i for i in range(2000))  # several chunks
    made = client.files.create(file=("batch.jsonl", data), purpose="batch")
    assert made.bytes == len(data) and made.filename == "batch.jsonl"
    upload = fake_openai.last
    assert upload.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert upload.headers["authorization"] == "Bearer sk-openai-fake-test-key"
    listed = client.files.list(purpose="batch", limit=5)
    assert [f.id for f in listed.data] == [made.id]
    assert fake_openai.last.query == {"purpose": "batch", "limit": "5"}  # the query as sent
    with httpx.stream("GET", f"{gw.url}/v1/files/{made.id}/content") as streamed:
        assert streamed.headers["content-type"] == "application/octet-stream"
        assert streamed.read() == data  # byte for byte
    assert client.files.content(made.id).content == data
    head = httpx.head(f"{gw.url}/v1/files/{made.id}/content")
    assert head.status_code == 200 and head.content == b""  # the head only, the upstream let go
    assert fake_openai.last.method == "HEAD"
    assert client.files.delete(made.id).deleted is True
    with pytest.raises(openai.NotFoundError, match="No such File"):
        client.files.retrieve(made.id)  # the upstream's own 404, relayed unchanged


def test_responses_retrieve_goes_to_the_backend_that_serves_responses(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    native = FakeOpenAI(serves_responses=True).start()
    try:
        gw = gateway_factory(backends=[fake_anthropic, native.backend(models=["gpt-*"])])
        client = oai(gw)
        made = client.responses.create(model="gpt-4o", input="keep me")
        got = client.responses.retrieve(made.id)
        assert got.id == made.id and got.output_text == made.output_text
        assert native.last.path == f"/v1/responses/{made.id}"
        assert native.last.headers["authorization"] == "Bearer sk-openai-fake-test-key"
        with pytest.raises(openai.NotFoundError, match="resp_nothing"):
            client.responses.retrieve("resp_nothing")
    finally:
        native.stop()


def test_a_turn_the_gateway_keeps_is_a_404_saying_what_it_is_for(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(backends=[fake_anthropic])
    client = oai(gw)
    made = client.responses.create(model="claude-sonnet-4-6", input="translated")
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(made.id)
    body = info.value.body
    assert isinstance(body, dict) and "previous_response_id" in body["message"]
    follow = client.responses.create(
        model="claude-sonnet-4-6", input="and on", previous_response_id=made.id
    )
    assert follow.output_text  # the turn is still kept for what it is for
    with pytest.raises(openai.BadRequestError, match="serves the Responses API"):
        client.responses.retrieve("resp_kept_by_nobody")  # no backend to ask


def test_message_batches_through_the_anthropic_sdk(
    gateway_factory: Factory, fake_anthropic: FakeAnthropic, fake_openai: FakeOpenAI
) -> None:
    gw = gateway_factory(backends=[fake_openai, fake_anthropic])
    params: Any = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": USER}
    batch = ant(gw).messages.batches.create(
        requests=[{"custom_id": "one", "params": params}, {"custom_id": "two", "params": params}]
    )
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 2
    seen = fake_anthropic.last
    assert seen.path == "/v1/messages/batches"
    assert seen.headers["x-api-key"] == "sk-ant-fake-test-key"
    assert CLIENT_KEY not in str(dict(seen.headers))
    assert seen.headers["anthropic-version"]
    again = ant(gw).messages.batches.retrieve(batch.id)
    assert again.id == batch.id
    model = ant(gw).models.retrieve("claude-opus-4-6")  # GET /v1/models/{id}: forwarded too
    assert model.id == "claude-opus-4-6"
    assert fake_openai.requests == []


def test_which_backend_and_the_errors_that_say_what_to_do(
    gateway_factory: Factory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    two = [fake_anthropic, fake_openai.backend("a"), fake_openai.backend("b", key="sk-b-key")]
    gw = gateway_factory(backends=two)
    with pytest.raises(openai.BadRequestError) as info:
        oai(gw).files.list()
    message = info.value.message
    assert "several backends" in message and 'default_backend = "a"' in message
    # A model in the body routes as for completions: forced prefix stripped, that backend's key.
    oai(gw).embeddings.create(model=f"b:{EMBED}", input="x")
    assert fake_openai.last.json["model"] == EMBED
    assert fake_openai.last.headers["authorization"] == "Bearer sk-b-key"
    with pytest.raises(openai.BadRequestError) as info:
        oai(gw).embeddings.create(model="claude-sonnet-4-6", input="x")
    message = info.value.message
    assert "routes to backend 'anthropic', an Anthropic backend" in message
    assert "/v1/embeddings is not translated" in message
    with pytest.raises(openai.NotFoundError, match="not routable"):
        oai(gw).embeddings.create(model="nobody:x", input="x")

    chosen = gateway_factory(backends=two, default_backend="b")
    assert oai(chosen).files.list().data == []
    assert fake_openai.last.headers["authorization"] == "Bearer sk-b-key"
    # The default speaks OpenAI: an Anthropic client's request goes to the only Anthropic one.
    assert ant(chosen).models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5"

    openai_only = gateway_factory(backends=[fake_openai])
    with pytest.raises(anthropic.BadRequestError, match="speaks the Anthropic API"):
        ant(openai_only).messages.batches.retrieve("msgbatch_x")


def test_the_switch_off_keeps_the_404(gateway_factory: Factory, fake_openai: FakeOpenAI) -> None:
    gw = gateway_factory(backends=[fake_openai], forward_other_endpoints=False)
    with pytest.raises(openai.NotFoundError) as info:
        oai(gw).embeddings.create(model=EMBED, input="x")
    assert info.value.body == {
        "message": "no such endpoint: POST /v1/embeddings (this gateway does not forward the "
        "endpoints it does not serve itself: [gateway] forward_other_endpoints = false)",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }
    assert fake_openai.requests == []
    on = gateway_factory(backends=[fake_openai])
    r = httpx.get(on.url + "/v2/nothing")  # only /v1/ is forwarded
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = httpx.get(on.url + "/v1/chat/completions")  # the gateway's own path, another method
    assert r.status_code == 404 and fake_openai.requests == []


def test_while_the_guard_is_halted_posts_are_refused_and_gets_pass(
    gateway_factory: Factory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    gw = gateway_factory(
        backends=[fake_anthropic, fake_openai], guard=GuardSettings(daily_usd=0.25)
    )
    with pytest.raises(anthropic.APIStatusError):  # reserves $0.30 past $0.25: the guard halts
        ant(gw).messages.create(model="claude-sonnet-4-6", max_tokens=20_000, messages=USER)
    before = len(fake_openai.requests)
    with pytest.raises(openai.APIStatusError) as info:
        oai(gw).embeddings.create(model=EMBED, input="x")
    assert info.value.status_code == 503
    assert info.value.response.json()["error"]["code"] == "spend_guard_halted"
    assert len(fake_openai.requests) == before  # nothing went upstream
    assert oai(gw).files.list().data == []  # a GET bills nothing: it passes


def test_an_unreachable_backend_is_a_502_in_the_clients_dialect(
    gateway_factory: Factory,
) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    gw = gateway_factory(
        backends=[
            BackendConfig(name="o", kind="openai", base_url=dead + "/v1", key="k"),
            BackendConfig(name="a", kind="anthropic", base_url=dead, key="k"),
        ]
    )
    with pytest.raises(openai.APIStatusError) as info:
        oai(gw).files.list()
    assert info.value.status_code == 502 and "backend 'o' unreachable" in info.value.message
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        ant(gw).messages.batches.retrieve("msgbatch_x")
    assert ainfo.value.status_code == 502
    assert ainfo.value.response.json()["error"]["type"] == "api_error"


def _holding_upstream(gone: threading.Event) -> web.Application:
    """Sends one piece of a file, then holds the rest until the gateway lets go of it."""

    async def content(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await resp.prepare(request)
        await resp.write(b"first piece")
        try:
            for _ in range(500):  # at most 10 s; the test's client leaves long before
                transport = request.transport
                if transport is None or transport.is_closing():
                    break
                await asyncio.sleep(0.02)
        finally:
            gone.set()
        return resp

    app = web.Application()
    app.router.add_get("/v1/files/{file_id}/content", content)
    return app


def test_a_client_that_leaves_mid_relay_frees_the_upstream(gateway_factory: Factory) -> None:
    gone = threading.Event()
    with ServerThread(_holding_upstream(gone)) as upstream:
        backend = BackendConfig(name="o", kind="openai", base_url=upstream.url + "/v1", key="k")
        gw = gateway_factory(backends=[backend])
        with httpx.stream("GET", f"{gw.url}/v1/files/file-1/content") as r:
            assert next(r.iter_raw()) == b"first piece"
        assert gone.wait(5), "the gateway kept the upstream connection after the client left"


def _capture_upstream(seen: list[str]) -> web.Application:
    """Answers any path with a priced completion's usage, keeping each request's path as sent."""

    async def any_path(request: web.Request) -> web.Response:
        seen.append(request.raw_path)
        usage = {"prompt_tokens": 200_000, "completion_tokens": 0, "total_tokens": 200_000}
        return web.json_response({"object": "text_completion", "model": "gpt-4o-mini",
                                  "choices": [], "usage": usage})  # fmt: skip

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    return app


def _raw_status(url: str, method: str, target: str) -> int:
    """The status of one request sent byte for byte (no client library tidies the target)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}".encode("latin-1")
        )
        head = sock.recv(65536)
    return int(head.split(b" ", 2)[1])


def test_the_path_goes_upstream_as_encoded_and_one_that_could_reach_elsewhere_is_refused(
    gateway_factory: Factory,
) -> None:
    seen: list[str] = []
    with ServerThread(_capture_upstream(seen)) as upstream:
        backend = BackendConfig(name="o", kind="openai", base_url=upstream.url + "/p/v1", key="k")
        gw = gateway_factory(backends=[backend])
        # an id with an encoded slash and question mark stays one segment, encoded as sent
        assert _raw_status(gw.url, "GET", "/v1/models/acct%2Ffw%2Fx%3Fy") == 200
        assert seen == ["/p/v1/models/acct%2Ffw%2Fx%3Fy"]
        escapes = (
            "/v1/../../admin",  # out of /v1/ and of the backend's prefix
            "/v1/%2e%2e/%2E%2E/admin",  # the same, encoded
            "/v1//chat/completions",  # the gateway's own endpoint by another spelling
            "/v1/chat/completions/",
            "/v1/./messages",
            "/v1/files/a%0d%0aX-Evil:%201",  # an encoded CR LF
        )
        for target in escapes:
            assert _raw_status(gw.url, "POST", target) in (400, 404), target
        assert len(seen) == 1  # none of them reached the upstream


def test_what_a_forwarded_answer_costs_counts_against_the_budget(gateway_factory: Factory) -> None:
    seen: list[str] = []
    with ServerThread(_capture_upstream(seen)) as upstream:
        backend = BackendConfig(
            name="o", kind="openai", base_url=upstream.url + "/v1", key="k", models=("gpt-*",)
        )
        gw = gateway_factory(backends=[backend], guard=GuardSettings(daily_usd=0.01))
        body = {"model": "gpt-4o-mini", "prompt": "x"}
        first = httpx.post(gw.url + "/v1/completions", json=body)  # 200k tokens: $0.03
        assert first.status_code == 200
        deadline = time.monotonic() + 10  # settled after the answer, with its record
        while not httpx.get(gw.url + "/health").json()["guard"]["limits"][0]["spent_usd"]:
            assert time.monotonic() < deadline, "the forwarded answer's cost never settled"
            time.sleep(0.02)
        second = httpx.post(gw.url + "/v1/completions", json=body)
        assert second.status_code == 503
        assert second.json()["error"]["code"] == "spend_guard_halted"
        assert len(seen) == 1
