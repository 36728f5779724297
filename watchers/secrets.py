"""The secret gate: nothing that looks like a credential leaves the machine in a commit or a PR."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from driftgate.watchers.errors import SecretFound

# Compiled once at import. Boundaries keep model ids ("claude-...") and base64 integrity strings
# ("sha512-...", which never contain '-' or '_') from matching.
_B = r"(?<![A-Za-z0-9_-])"
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Anthropic API key", re.compile(_B + r"sk-ant-[A-Za-z0-9_-]{20,}")),
    ("OpenAI API key", re.compile(_B + r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}")),
    ("GitHub token", re.compile(_B + r"(?:ghp|gho|ghs|ghu|ghr)_[A-Za-z0-9]{30,}")),
    ("GitHub fine-grained token", re.compile(_B + r"github_pat_[A-Za-z0-9_]{22,}")),
    ("bearer token", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/-]{20,}=*")),
    ("AWS access key id", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])")),
    (
        "AWS secret access key",
        re.compile(r"(?i)aws_?secret_?access_?key\s*[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}"),
    ),
    ("private key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
)


@dataclass(frozen=True)
class Finding:
    """One credential-shaped match: its kind, where it was (`name:line`), a redacted excerpt."""

    kind: str
    where: str
    excerpt: str


def _redact(match: str) -> str:
    shown = min(6, len(match) // 5)
    return f"{match[:shown]}…[{len(match)} chars redacted]"


def scan(text: str, where: str) -> list[Finding]:
    """Every credential-shaped string in `text`, reported without the secret itself."""
    findings: list[Finding] = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            findings.append(
                Finding(kind=kind, where=f"{where}:{line}", excerpt=_redact(m.group(0)))
            )
    return findings


def gate(texts: Mapping[str, str]) -> None:
    """Raise SecretFound, naming each kind and place (never the value), if any text holds a secret."""
    findings = [f for where, text in texts.items() for f in scan(text, where)]
    if findings:
        listed = "; ".join(f"{f.kind} in {f.where} ({f.excerpt})" for f in findings[:5])
        more = f" (+{len(findings) - 5} more)" if len(findings) > 5 else ""
        raise SecretFound(f"refusing to publish: credential-shaped text found: {listed}{more}")
