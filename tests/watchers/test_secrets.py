"""The secret gate: credential shapes refuse publication; template content passes."""

from __future__ import annotations

import json

import pytest

from driftgate.proxy.templates import BUNDLED_DIR
from driftgate.watchers.errors import SecretFound
from driftgate.watchers.secrets import gate, scan

# Every credential-looking value is assembled at runtime: the repository holds none.
SAMPLES = {
    "Anthropic API key": "sk-" + "ant-" + "api03-" + "A1b2C3d4" * 6,
    "OpenAI API key": "sk-" + "proj-" + "Z9y8X7w6" * 5,
    "GitHub token": "gh" + "s_" + "abcDEF0123" * 4,
    "GitHub fine-grained token": "github" + "_pat_" + "11ABCDEFG0" * 4,
    "bearer token": "Authorization: " + "Bearer " + "eyJhbGciOi" * 4,
    "AWS access key id": "AK" + "IA" + "QWERTYUIOP123456",
    "AWS secret access key": "aws_secret_access_key = "
    + "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"[:40],
    "private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...",
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_credential_shape_is_found_and_redacted(kind: str) -> None:
    secret = SAMPLES[kind]
    text = f"line one\nsomething {secret} here\n"
    findings = scan(text, "pull request body")
    assert kind in {f.kind for f in findings}
    finding = next(f for f in findings if f.kind == kind)
    assert finding.where == "pull request body:2"
    assert secret not in finding.excerpt and "redacted" in finding.excerpt


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_gate_refuses_and_never_repeats_the_secret(kind: str) -> None:
    secret = SAMPLES[kind]
    with pytest.raises(SecretFound) as info:
        gate({"template content": "{}", "commit message": f"bump\n\n{secret}\n"})
    message = str(info.value)
    assert kind in message and "commit message:3" in message
    long_part = secret.split()[-1]
    assert long_part not in message


def test_openai_pattern_does_not_double_report_anthropic_keys() -> None:
    kinds = [f.kind for f in scan(SAMPLES["Anthropic API key"], "x")]
    assert kinds == ["Anthropic API key"]


@pytest.mark.parametrize("name", ["anthropic", "openai", "claude-code"])
def test_bundled_templates_pass_the_gate(name: str) -> None:
    gate({name: (BUNDLED_DIR / f"{name}.json").read_text()})


def test_template_like_content_is_not_a_secret() -> None:
    doc = {
        "models": {
            "claude-sonnet-4-5-20250929": {},
            "gpt-5.1-codex-mini": {},
            "o4-mini-deep-research": {},
        },
        "source": {"integrity": "sha512-" + "Ab+/9z" * 14 + "AKIAQWERTYUIOP12345=="},
        "notes": "Set ANTHROPIC_API_KEY; the gateway sends Authorization: Bearer <token>. task-ant-colony",
        "betas": ["skills-2025-10-02", "sk-short"],
    }
    gate({"template content": json.dumps(doc, indent=2), "title": "drift(anthropic): 1.0 -> 1.1"})


def test_several_findings_are_all_counted() -> None:
    text = "\n".join(SAMPLES.values())
    with pytest.raises(SecretFound, match=r"\(\+\d+ more\)"):
        gate({"body": text})
