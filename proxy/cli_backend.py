"""Placeholder registration; replaced by the real subcommand."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    """Attach nothing yet."""
    _ = (sub, argparse)
