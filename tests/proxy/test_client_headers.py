"""The per-header decision: owned, credential, vendor or forwarded; Connection-named hops."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.client_headers import (
    ANTHROPIC,
    ANTHROPIC_BETA,
    CREDENTIAL,
    FORWARD,
    OPENAI,
    OWNED,
    classify,
    connection_names,
    forwardable,
    vendor_to_drop,
)


def test_classes() -> None:
    for name in ("connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
                 "host", "content-length", "accept-encoding", "proxy-connection",
                 "x-driftgate-backend"):  # fmt: skip
        assert classify(name) == OWNED, name
    assert classify("proxy-authorization") == OWNED  # hop-by-hop: for a proxy on this hop
    for name in ("authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"):
        assert classify(name) == CREDENTIAL, name
    assert classify("anthropic-version") == ANTHROPIC
    assert classify("anthropic-beta") == ANTHROPIC_BETA
    assert classify("openai-beta") == OPENAI
    for name in ("x-stainless-os", "session-id", "x-claude-code-session-id", "user-agent",
                 "x-future-thing", "originator"):  # fmt: skip
        assert classify(name) == FORWARD, name


def test_vendor_dropped_only_across_dialects() -> None:
    assert vendor_to_drop("anthropic", "anthropic") is None
    assert vendor_to_drop("openai", "openai") is None
    assert vendor_to_drop("anthropic", "openai") == ANTHROPIC
    assert vendor_to_drop("openai", "anthropic") == OPENAI


def test_connection_tokens_and_repeats() -> None:
    assert connection_names(" Keep-Alive ,X-Hop,, ") == frozenset({"keep-alive", "x-hop"})
    client = CIMultiDictProxy(
        CIMultiDict(
            [("Connection", "x-hop"), ("X-Hop", "1"), ("X-Multi", "a"), ("x-multi", "b"),
             ("X-Api-Key", "sk-c"), ("Anthropic-Beta", "b1"), ("Anthropic-Version", "v")]
        )
    )  # fmt: skip
    dropped: list[str] = []
    out, creds = forwardable(client, ANTHROPIC, dropped)
    assert out == {"x-multi": "a, b"}
    assert creds == {"x-api-key": "sk-c"}
    assert dropped == ["header:anthropic-beta", "header:anthropic-version"]
    same, _ = forwardable(client, None, [])
    assert same == {"x-multi": "a, b", "anthropic-beta": "b1", "anthropic-version": "v"}
