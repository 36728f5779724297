"""Read what a running `driftgate top` shows, as plain text."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console
from textual.widgets import Static


def shown(app: Any, selector: str) -> str:
    """The text a Static widget was last given (rendered by Rich, 200 columns wide)."""
    console = Console(width=200, record=True, file=io.StringIO(), color_system=None)
    console.print(app.query_one(selector, Static).content)
    return console.export_text()


def screen_text(app: Any) -> str:
    """The whole screen as Textual exports it (SVG), with its non-breaking spaces made plain."""
    svg: str = app.export_screenshot()
    return svg.replace("&#160;", " ")
