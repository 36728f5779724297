"""The per-header decision: owned, credential, vendor or forwarded; Connection-named hops."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from driftgate.proxy.client_headers import (
    ANTHROPIC,
    ANTHROPIC_BETA,
    CREDENTIAL,
    DIALECT_VERSION,
    FORWARD,
    OPENAI,
    OWNED,
    SAME_DIALECT,
    TO_OPENAI,
    classify,
    connection_names,
    forwardable,
    rule_for,
)


def test_classes() -> None:
    for name in ("connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade",
                 "host", "content-length", "accept-encoding", "proxy-connection",
                 "x-driftgate-backend"):  # fmt: skip
        assert classify(name) == OWNED, name
    assert classify("proxy-authorization") == OWNED  # hop-by-hop: for a proxy on this hop
    for name in ("authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"):
        assert classify(name) == CREDENTIAL, name
    assert classify("anthropic-version") == DIALECT_VERSION
    assert classify("anthropic-dangerous-direct-browser-access") == ANTHROPIC
    assert classify("anthropic-beta") == ANTHROPIC_BETA
    assert classify("openai-beta") == OPENAI
    for name in ("x-stainless-os", "session-id", "x-claude-code-session-id", "user-agent",
                 "x-future-thing", "originator"):  # fmt: skip
        assert classify(name) == FORWARD, name


def test_vendor_dropped_only_across_dialects() -> None:
    assert rule_for("anthropic", "anthropic") is rule_for("openai", "openai") is SAME_DIALECT
    assert not SAME_DIALECT.drop
    assert rule_for("anthropic", "openai").drop == {ANTHROPIC, ANTHROPIC_BETA}
    assert rule_for("openai", "anthropic").drop == {OPENAI}


def test_connection_tokens_and_repeats() -> None:
    assert connection_names(" Keep-Alive ,X-Hop,, ") == frozenset({"keep-alive", "x-hop"})
    client = CIMultiDictProxy(
        CIMultiDict(
            [("Connection", "x-hop"), ("X-Hop", "1"), ("X-Multi", "a"), ("x-multi", "b"),
             ("X-Api-Key", "sk-c"), ("Anthropic-Beta", "b1"), ("Anthropic-Version", "v")]
        )
    )  # fmt: skip
    dropped: list[str] = []
    out: dict[str, str] = {}
    creds = forwardable(client, out, TO_OPENAI, dropped)
    assert out == {"x-multi": "a, b"}
    assert creds == {"x-api-key": "sk-c"}
    assert dropped == ["header:anthropic-beta"]  # anthropic-version: read by the gateway, not lost
    same: dict[str, str] = {}
    assert forwardable(client, same, SAME_DIALECT, []) == {"x-api-key": "sk-c"}
    assert same == {"x-multi": "a, b", "anthropic-beta": "b1", "anthropic-version": "v"}
