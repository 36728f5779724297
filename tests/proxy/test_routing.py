"""Routing: forced prefixes, template aliases, claimed globs, defaults, fallbacks, unroutable help."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import ConfigError, Unroutable
from driftgate.proxy.routing import Route, Router
from driftgate.proxy.templates import Template, TemplateSet, content_hash, load_bundled

BUNDLED = load_bundled()


def backend(name: str, kind: str, *models: str) -> BackendConfig:
    return BackendConfig(name=name, kind=kind, base_url=f"http://127.0.0.1:1/{name}", models=models)


def config(
    *backends: BackendConfig,
    default: str | None = None,
    fallbacks: dict[str, list[str]] | None = None,
) -> Config:
    return Config(
        home=Path("/nonexistent"),
        path=Path("/nonexistent/config.toml"),
        backends=backends,
        default_backend=default,
        fallbacks={k: tuple(v) for k, v in (fallbacks or {}).items()},
    )


def router(cfg: Config, templates: TemplateSet = BUNDLED) -> Router:
    return Router(cfg, lambda: templates)


def primary(r: Router, model: str) -> tuple[str, str]:
    route = r.resolve(model)[0]
    return route.backend.name, route.model


def with_aliases(aliases: dict[str, str]) -> TemplateSet:
    doc = copy.deepcopy(dict(BUNDLED.templates["anthropic"].doc))
    doc["aliases"] = aliases
    t = Template("anthropic", "upstream", doc, content_hash(doc), "<test>")
    return TemplateSet({**BUNDLED.templates, "anthropic": t})


ANTH = backend("anthropic", "anthropic")
LOCAL = backend("local", "openai", "qwen-*", "llama3.1")
OPENAI = backend("openai", "openai", "gpt-*", "o*")


def test_claude_models_go_to_the_first_anthropic_backend() -> None:
    r = router(config(ANTH, LOCAL, OPENAI))
    assert primary(r, "claude-sonnet-4-6") == ("anthropic", "claude-sonnet-4-6")
    route = r.resolve("claude-sonnet-4-6")[0]
    assert route == Route(ANTH, "claude-sonnet-4-6", "claude-sonnet-4-6")


def test_an_anthropic_backend_claiming_a_glob_wins_for_claude_ids() -> None:
    other = backend("bedrock-ish", "anthropic", "claude-opus-*")
    r = router(config(ANTH, other))
    assert primary(r, "claude-opus-4-6") == ("bedrock-ish", "claude-opus-4-6")
    assert primary(r, "claude-haiku-4-5") == ("anthropic", "claude-haiku-4-5")


def test_aliases_come_from_the_templates() -> None:
    r = router(config(ANTH, OPENAI))
    assert primary(r, "opus") == ("anthropic", "claude-opus-4-6")
    assert primary(r, "haiku") == ("anthropic", "claude-haiku-4-5")
    assert r.resolve("sonnet")[0].requested == "sonnet"


def test_alias_changes_follow_a_new_template_set() -> None:
    current = {"set": BUNDLED}
    r = Router(config(ANTH), lambda: current["set"])
    assert primary(r, "opus") == ("anthropic", "claude-opus-4-6")
    current["set"] = with_aliases({"opus": "claude-opus-4-5"})
    assert primary(r, "opus") == ("anthropic", "claude-opus-4-5")


def test_other_ids_go_to_the_openai_backend_claiming_them() -> None:
    r = router(config(ANTH, LOCAL, OPENAI))
    assert primary(r, "qwen-coder") == ("local", "qwen-coder")
    assert primary(r, "llama3.1") == ("local", "llama3.1")
    assert primary(r, "gpt-4o") == ("openai", "gpt-4o")
    assert primary(r, "o3") == ("openai", "o3")


def test_globs_match_whole_ids_case_sensitively() -> None:
    r = router(config(LOCAL, OPENAI))
    with pytest.raises(Unroutable):
        r.resolve("QWEN-coder")
    with pytest.raises(Unroutable):
        r.resolve("llama3.1-instruct")


def test_default_backend_takes_what_nobody_claims() -> None:
    r = router(config(ANTH, LOCAL, OPENAI, default="local"))
    assert primary(r, "mistral-large") == ("local", "mistral-large")
    assert primary(r, "gpt-4o") == ("openai", "gpt-4o")


def test_a_sole_openai_backend_claiming_nothing_is_the_catch_all() -> None:
    only = backend("groq", "openai")
    r = router(config(ANTH, only))
    assert primary(r, "llama-3.3-70b") == ("groq", "llama-3.3-70b")
    assert primary(r, "claude-haiku-4-5") == ("anthropic", "claude-haiku-4-5")


def test_no_catch_all_when_the_sole_openai_backend_claims_models() -> None:
    r = router(config(ANTH, LOCAL))
    with pytest.raises(Unroutable) as exc:
        r.resolve("gpt-4o")
    msg = exc.value.message
    assert "'gpt-4o' is not routable" in msg
    assert "'local' (openai: qwen-*, llama3.1)" in msg
    assert "'anthropic' (anthropic: claude-*, aliases haiku, opus, sonnet)" in msg
    assert "BACKEND:MODEL" in msg
    assert exc.value.status == 404


def test_claude_ids_without_an_anthropic_backend_need_a_claim_or_default() -> None:
    with pytest.raises(Unroutable):
        router(config(backend("groq", "openai"))).resolve("claude-sonnet-4-6")
    router_or = router(config(backend("openrouter", "openai", "claude-*")))
    assert primary(router_or, "sonnet") == ("openrouter", "claude-sonnet-4-6")


def test_prefix_forces_a_backend_and_aliases_apply_after_it() -> None:
    r = router(config(ANTH, LOCAL, OPENAI))
    assert primary(r, "openai:gpt-4o") == ("openai", "gpt-4o")
    assert primary(r, "anthropic:opus") == ("anthropic", "claude-opus-4-6")
    assert primary(r, "local:qwen-coder") == ("local", "qwen-coder")
    # forcing overrides claims: local does not claim gpt-4o but gets it when asked by name
    assert primary(r, "local:gpt-4o") == ("local", "gpt-4o")
    assert r.resolve("openai:gpt-4o")[0].requested == "openai:gpt-4o"


def test_only_the_first_colon_is_the_prefix() -> None:
    r = router(config(ANTH, LOCAL))
    assert primary(r, "local:qwen2.5-coder:7b") == ("local", "qwen2.5-coder:7b")


def test_unknown_prefix_is_unroutable_unless_a_backend_claims_the_whole_id() -> None:
    r = router(config(ANTH, backend("ollama", "openai", "qwen*:*")))
    with pytest.raises(Unroutable) as exc:
        r.resolve("nope:gpt-4o")
    assert "no backend named 'nope'" in exc.value.message
    assert "'ollama' (openai: qwen*:*)" in exc.value.message
    assert primary(r, "qwen2.5-coder:7b") == ("ollama", "qwen2.5-coder:7b")


def test_empty_model_after_prefix_is_unroutable() -> None:
    with pytest.raises(Unroutable):
        router(config(ANTH)).resolve("anthropic:")


def test_no_backends_says_how_to_add_one() -> None:
    with pytest.raises(Unroutable) as exc:
        router(config()).resolve("claude-sonnet-4-6")
    assert "driftgate backend add" in exc.value.message
    assert "ANTHROPIC_API_KEY" in exc.value.message and "OPENAI_API_KEY" in exc.value.message


def test_fallbacks_follow_the_primary_in_order() -> None:
    cfg = config(ANTH, LOCAL, OPENAI, fallbacks={"opus": ["openai:gpt-5.4", "local:qwen-coder"]})
    routes = router(cfg).resolve("opus")
    assert [(r.backend.name, r.model) for r in routes] == [
        ("anthropic", "claude-opus-4-6"),
        ("openai", "gpt-5.4"),
        ("local", "qwen-coder"),
    ]
    assert {r.requested for r in routes} == {"opus"}


def test_fallbacks_keyed_by_the_resolved_id_apply_to_aliases_and_prefixes() -> None:
    cfg = config(ANTH, OPENAI, fallbacks={"claude-opus-4-6": ["gpt-5.4"]})
    r = router(cfg)
    assert [x.backend.name for x in r.resolve("opus")] == ["anthropic", "openai"]
    assert [x.backend.name for x in r.resolve("anthropic:opus")] == ["anthropic", "openai"]
    assert [x.backend.name for x in r.resolve("claude-haiku-4-5")] == ["anthropic"]


def test_fallback_duplicates_and_unroutable_targets_are_skipped() -> None:
    cfg = config(
        ANTH,
        LOCAL,
        fallbacks={"qwen-coder": ["local:qwen-coder", "mystery-model", "anthropic:haiku"]},
    )
    routes = router(cfg).resolve("qwen-coder")
    assert [(r.backend.name, r.model) for r in routes] == [
        ("local", "qwen-coder"),
        ("anthropic", "claude-haiku-4-5"),
    ]


def test_fallback_to_an_unknown_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        router(config(ANTH, fallbacks={"opus": ["nope:gpt-4o"]}))


def test_resolve_hands_out_its_memo_immutable() -> None:
    """The routes are remembered per model and handed out as they are (no copy per request), so
    they are a tuple: no caller can change what the next request is routed by."""
    r = router(config(ANTH, OPENAI, fallbacks={"opus": ["openai:gpt-5.4"]}))
    first = r.resolve("opus")
    assert isinstance(first, tuple)
    assert len(first) == 2
    assert r.resolve("opus") is first


def test_routable_lists_template_models_explicit_ids_and_aliases() -> None:
    r = router(config(ANTH, LOCAL))
    pairs = r.routable()
    assert ("claude-opus-4-6", "anthropic") in pairs
    assert ("opus", "anthropic") in pairs
    assert ("llama3.1", "local") in pairs
    assert all(not model.startswith("gpt-") for model, _ in pairs)  # nobody serves gpt-*
    assert all("*" not in model for model, _ in pairs)
    assert len(pairs) == len({m for m, _ in pairs})


def test_routable_with_a_catch_all_includes_openai_template_models() -> None:
    pairs = dict(router(config(backend("openai", "openai"))).routable())
    assert pairs["gpt-4o"] == "openai"
    assert "claude-opus-4-6" not in pairs


def test_routable_follows_a_new_template_set() -> None:
    current = {"set": BUNDLED}
    r = Router(config(ANTH), lambda: current["set"])
    assert dict(r.routable())["opus"] == "anthropic"
    current["set"] = with_aliases({"big": "claude-opus-4-6"})
    pairs = dict(r.routable())
    assert "opus" not in pairs and pairs["big"] == "anthropic"


def test_with_no_backends_the_404_says_a_reload_picks_up_an_added_one() -> None:
    # `driftgate backend add` then SIGHUP is enough; only new environment keys need a restart.
    from driftgate.proxy.health import HOW_TO_ADD

    with pytest.raises(Unroutable) as caught:
        router(config()).resolve("claude-sonnet-4-6")
    assert (
        "`driftgate backend add NAME --kind anthropic|openai ...` and send the gateway SIGHUP"
        in str(caught.value)
    )
    assert "SIGHUP" in HOW_TO_ADD
