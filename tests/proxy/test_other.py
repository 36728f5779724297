"""Other endpoints: the client's dialect, the record's name, the body's model, which backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import Unroutable
from driftgate.proxy.other import (
    NO_MODEL,
    NotForwarded,
    choose_route,
    client_dialect,
    endpoint_name,
    model_of,
    response_id,
)
from driftgate.proxy.routing import Router
from driftgate.proxy.templates import load_bundled

BUNDLED = load_bundled()
ANT = BackendConfig(name="ant", kind="anthropic", base_url="http://127.0.0.1:1")
OAI = BackendConfig(name="oai", kind="openai", base_url="http://127.0.0.1:1/v1", models=("gpt-*",))
LOCAL = BackendConfig(name="local", kind="openai", base_url="http://127.0.0.1:2/v1")
NATIVE = BackendConfig(
    name="native", kind="openai", base_url="http://127.0.0.1:3/v1", responses=True
)


def choose(
    *backends: BackendConfig,
    path: str = "/v1/files",
    dialect: str = "openai",
    model: str | None = None,
    default: str | None = None,
) -> str:
    config = Config(
        home=Path("/nonexistent"),
        path=Path("/nonexistent/config.toml"),
        backends=backends,
        default_backend=default,
    )
    route = choose_route(config, Router(config, lambda: BUNDLED), path, dialect, model)  # type: ignore[arg-type]
    return f"{route.backend.name}/{route.model}"


def test_the_clients_dialect_is_read_from_its_headers_or_a_messages_path() -> None:
    assert client_dialect("/v1/files", {"anthropic-version": "2023-06-01"}) == "anthropic"
    assert client_dialect("/v1/files", {"x-api-key": "k"}) == "anthropic"
    assert client_dialect("/v1/messages/batches", {}) == "anthropic"
    assert client_dialect("/v1/files", {"authorization": "Bearer k"}) == "openai"


def test_the_records_name_is_the_first_segment_when_it_is_a_plain_name() -> None:
    assert endpoint_name("/v1/embeddings") == "other:embeddings"
    assert endpoint_name("/v1/files/file-1/content") == "other:files"
    assert endpoint_name("/v1/responses/resp_1") == "other:responses"  # never "responses"
    assert endpoint_name("/v1/") == "other"
    assert endpoint_name("/v1/%00junk" + "x" * 80) == "other"  # client-chosen: kept bounded


def test_the_model_is_a_json_bodys_string_model_only() -> None:
    assert model_of(b'{"model": "text-embedding-3-small"}', "application/json") == (
        "text-embedding-3-small"
    )
    assert model_of(b'{"model": "m"}', None) == "m"
    assert model_of(b'{"model": 5}', "application/json") is None
    assert model_of(b'{"model": ""}', "application/json") is None
    assert model_of(b"[1]", "application/json") is None
    assert model_of(b"not json", "application/json") is None  # the upstream judges it
    assert model_of(b'{"model": "m"}', "multipart/form-data; boundary=x") is None
    assert model_of(b"", None) is None


def test_response_ids_from_retrieval_paths() -> None:
    assert response_id("/v1/responses/resp_1") == "resp_1"
    assert response_id("/v1/responses/resp_1/input_items") == "resp_1"
    assert response_id("/v1/responses/") is None
    assert response_id("/v1/files/x") is None


def test_a_model_routes_as_for_completions_and_must_speak_the_dialect() -> None:
    assert choose(ANT, OAI, LOCAL, model="gpt-4o") == "oai/gpt-4o"
    assert choose(ANT, OAI, LOCAL, model="local:nomic-embed") == "local/nomic-embed"
    assert choose(ANT, OAI, dialect="anthropic", model="sonnet") == "ant/claude-sonnet-4-6"
    with pytest.raises(NotForwarded, match="routes to backend 'ant', an Anthropic backend"):
        choose(ANT, OAI, path="/v1/embeddings", model="claude-sonnet-4-6")
    with pytest.raises(Unroutable):
        choose(ANT, OAI, model="nobody:x")


def test_without_a_model_the_default_then_the_only_one_that_speaks_it() -> None:
    assert choose(ANT, OAI) == f"oai/{NO_MODEL}"
    assert choose(ANT, OAI, LOCAL, default="local") == f"local/{NO_MODEL}"
    assert choose(ANT, OAI, dialect="anthropic", default="oai") == f"ant/{NO_MODEL}"
    with pytest.raises(NotForwarded, match='set default_backend = "oai" under'):
        choose(ANT, OAI, LOCAL)
    with pytest.raises(NotForwarded, match="no configured backend does"):
        choose(OAI, dialect="anthropic")


def test_responses_retrieval_goes_to_a_backend_that_serves_responses() -> None:
    path = "/v1/responses/resp_1"
    assert choose(OAI, NATIVE, path=path) == f"native/{NO_MODEL}"
    assert choose(NATIVE, OAI, path=path, default="oai") == f"native/{NO_MODEL}"
    with pytest.raises(NotForwarded, match=r"serves the Responses API \(`responses = true`\)"):
        choose(OAI, LOCAL, path=path)
