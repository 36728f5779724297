"""The Status tab's spend guard block, rendered as text."""

from __future__ import annotations

from rich.console import Console

from driftgate.proxy.top.status_view import _guard


def _text(guard: dict[str, object]) -> str:
    console = Console(width=120, record=True)
    console.print(_guard(guard))
    return console.export_text()


def test_a_guard_whose_redis_does_not_answer_says_so_and_what_requests_get() -> None:
    shown = _text({
        "enabled": True,
        "action": "halt",
        "state": "store_unreachable",
        "store": {"kind": "redis", "url": "redis://:***@cache:6379/0", "reachable": False,
                  "error": "ConnectionError: refused", "fail": "closed"},
    })  # fmt: skip
    assert "STORE UNREACHABLE" in shown and " ok " not in shown
    assert "redis://:***@cache:6379/0: ConnectionError: refused" in shown
    assert "completions are refused (503)" in shown
