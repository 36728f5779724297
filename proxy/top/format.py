"""Small text pieces the views share: bars, money, token counts, durations."""

from __future__ import annotations

import time

from rich.text import Text

BAR_WIDTH = 24


def bar(fraction: float, width: int = BAR_WIDTH, style: str = "green") -> Text:
    """A horizontal bar filled to `fraction` (0..1), in eighths of a cell."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + ("▏▎▍▌▋▊▉"[part - 1] if part else "")
    out = Text(text, style=style)
    out.append(" " * (width - len(text)), style="on grey15")
    return out


def usd(value: float | None) -> str:
    """Money with the precision small sums need."""
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"${value:,.0f}"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}" if value == 0 or abs(value) >= 0.0001 else f"${value:.6f}"


def count(value: float | None) -> str:
    """A token or request count, shortened past a thousand."""
    if value is None:
        return "-"
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def ms(value: float | None) -> str:
    """Milliseconds, or '-' when not measured."""
    return "-" if value is None else f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def seconds(value: float | None) -> str:
    """A duration in seconds as 45s, 12m, 3h."""
    if value is None:
        return "-"
    if value < 90:
        return f"{value:.0f}s"
    if value < 5400:
        return f"{value / 60:.0f}m"
    return f"{value / 3600:.1f}h"


def clock(ts: float | None) -> str:
    """A Unix time as local HH:MM:SS."""
    return "-" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def percent(value: float | None) -> str:
    """A fraction as a percentage."""
    return (
        "-" if value is None else f"{value:.0%}" if value >= 0.1 or value == 0 else f"{value:.1%}"
    )
