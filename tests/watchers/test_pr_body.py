"""PR body fingerprint marker and truncation below GitHub's 65,536-character limit."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.watchers.pr_body import BODY_LIMIT, fingerprint_marker, fingerprint_of, truncate_body

FP = "sha256:" + "ab" * 32


def test_marker_round_trips_and_absent_is_none() -> None:
    assert fingerprint_of(f"body\n\n{fingerprint_marker(FP)}\n") == FP
    assert fingerprint_of("no marker here") is None
    assert fingerprint_of("<!-- driftgate:fingerprint=sha256:short -->") is None


def test_short_body_is_kept_and_an_old_marker_dropped() -> None:
    assert truncate_body(f"## Summary\n\ntext\n{fingerprint_marker(FP)}") == "## Summary\n\ntext"


def test_largest_code_block_shrinks_first_and_sections_survive() -> None:
    body = (
        "## Summary\n\n| a | b |\n|---|---|\n| x | y |\n\n"
        "```diff\n" + "+ added line\n" * 10_000 + "```\n\n"
        "## Provenance\n\npackage x\n\n## Checklist\n\n- [ ] runbook\n"
    )
    out = truncate_body(body)
    assert len(out) <= BODY_LIMIT
    assert out.startswith("## Summary") and "## Provenance" in out and out.endswith("- [ ] runbook")
    assert "... truncated:" in out and out.count("```") == 2


def test_body_without_code_blocks_is_cut_with_a_note() -> None:
    out = truncate_body("x" * (BODY_LIMIT * 2))
    assert len(out) <= BODY_LIMIT and out.endswith("_Body truncated to fit GitHub's limit._")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=40_000), min_size=1, max_size=4))
def test_any_mix_of_blocks_fits(sizes: list[int]) -> None:
    body = "\n\n".join(f"## S{i}\n\n```\n" + "y\n" * (n // 2) + "```" for i, n in enumerate(sizes))
    out = truncate_body(body)
    assert len(out) <= BODY_LIMIT
    if len(body) <= BODY_LIMIT:
        assert out == body.rstrip()
