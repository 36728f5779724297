"""Judge one probe's answer: passed, diverged (the upstream changed), or inconclusive (an error)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from driftgate.watchers.canary.probes import Probe
from driftgate.watchers.canary.send import Answer

Verdict = Literal["pass", "diverged", "error", "skipped"]
# Divergences whose fix is a template change (the canary opens a PR for them).
FIXABLE = ("model-retired", "capability-refused")
ANTHROPIC_RATE = ("requests-limit", "requests-remaining", "requests-reset")
OPENAI_RATE = ("limit-requests", "remaining-requests", "reset-requests")
DURATION_RE = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")


@dataclass(frozen=True)
class Outcome:
    """What one probe showed. `finding` names a divergence's kind; `detail` says it in a sentence."""

    probe: Probe
    verdict: Verdict
    finding: str | None = None
    detail: str = ""


def _error_message(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("message") or error.get("type") or "")[:300]
    return str(body)[:300]


def _error_code(body: Any) -> str:
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return str(error.get("code") or error.get("type") or "")
    return ""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def shape_problem(probe: Probe, body: Any) -> str | None:
    """What is wrong with a 200 answer's shape or usage, if anything."""
    if not isinstance(body, Mapping):
        return "the answer is not a JSON object"
    if probe.kind == "anthropic":
        if body.get("type") != "message" or body.get("role") != "assistant":
            return f"type/role are {body.get('type')!r}/{body.get('role')!r}, not message/assistant"
        if not isinstance(body.get("content"), list):
            return "content is not a list of blocks"
        usage = body.get("usage")
        counts = ("input_tokens", "output_tokens")
    else:
        choices = body.get("choices")
        if body.get("object") != "chat.completion" or not isinstance(choices, list) or not choices:
            return "not a chat.completion with at least one choice"
        if not isinstance(choices[0], Mapping) or not isinstance(
            choices[0].get("message"), Mapping
        ):
            return "choices[0].message is missing"
        usage = body.get("usage")
        counts = ("prompt_tokens", "completion_tokens")
    if not isinstance(usage, Mapping) or not all(_is_int(usage.get(c)) for c in counts):
        return f"usage lacks {' and '.join(counts)} as counts"
    out = usage.get(counts[1])
    if isinstance(out, int) and out > probe.max_tokens:
        return f"usage reports {out} output tokens for a max of {probe.max_tokens}"
    return None


def _reset_parses(kind: str, value: str) -> bool:
    if kind == "anthropic":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return bool(DURATION_RE.match(value))


def rate_limit_problem(kind: str, headers: Mapping[str, str]) -> str | None:
    """Whether the rate-limit headers the gateway reads are there and parse."""
    lowered = {k.lower(): v for k, v in headers.items()}
    prefix, names = (
        ("anthropic-ratelimit-", ANTHROPIC_RATE)
        if kind == "anthropic"
        else ("x-ratelimit-", OPENAI_RATE)
    )
    missing = [prefix + n for n in names if prefix + n not in lowered]
    if missing:
        return "rate-limit headers missing: " + ", ".join(missing)
    bad = [
        f"{prefix}{n}={lowered[prefix + n]!r}"
        for n in names
        if not (
            _reset_parses(kind, lowered[prefix + n])
            if "reset" in n
            else lowered[prefix + n].isdigit()
        )
    ]
    return "rate-limit headers do not parse: " + ", ".join(bad) if bad else None


def _refusal(probe: Probe, answer: Answer) -> Outcome:
    message = _error_message(answer.body)
    retired = answer.status == 404 and (
        _error_code(answer.body) in ("not_found_error", "model_not_found") or "model" in message
    )
    if retired:
        return Outcome(
            probe, "diverged", "model-retired", f"{probe.model} is not served: {message}"
        )
    if answer.status == 400:
        if probe.check == "served":
            return Outcome(
                probe, "diverged", "request-refused", f"a minimal request was refused: {message}"
            )
        kind = "beta-refused" if probe.check.startswith("beta:") else "capability-refused"
        return Outcome(
            probe, "diverged", kind, f"{probe.check} refused on {probe.model}: {message}"
        )
    # 401/403 (key), 408/409/429 (limits), 5xx/529: the upstream said nothing about drift.
    return Outcome(probe, "error", None, f"HTTP {answer.status}: {message}")


def judge(probe: Probe, answer: Answer, *, check_rate_headers: bool = False) -> Outcome:
    """The verdict on one answer (`check_rate_headers` on one answer per backend)."""
    if answer.status is None:
        return Outcome(probe, "error", None, answer.error or "no answer")
    if answer.status != 200:
        return _refusal(probe, answer)
    problem = shape_problem(probe, answer.body)
    if problem:
        return Outcome(probe, "diverged", "shape", problem)
    if check_rate_headers:
        problem = rate_limit_problem(probe.kind, answer.headers)
        if problem:
            return Outcome(probe, "diverged", "rate-limit-headers", problem)
    return Outcome(probe, "pass")
