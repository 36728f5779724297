"""Placeholder registration; replaced by the real subcommands."""

from __future__ import annotations

from typing import Any


def register_watch(sub: Any) -> None:
    """Attach nothing yet."""
    _ = sub


def register_template(sub: Any) -> None:
    """Attach nothing yet."""
    _ = sub
