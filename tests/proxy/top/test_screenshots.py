"""The docs' screenshots: the script makes one SVG per tab, each with its title and its data."""

from __future__ import annotations

import re
from pathlib import Path

from tests.proxy.top.screenshots import make


def test_the_script_makes_an_svg_of_each_tab_with_its_data(tmp_path: Path) -> None:
    files = make(tmp_path)
    assert sorted(files) == ["analytics", "backends", "hits", "status"]
    text = {tab: path.read_text("utf-8").replace("&#160;", " ") for tab, path in files.items()}
    for tab, svg in text.items():
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert f"driftgate top: {tab.capitalize()}" in svg
    assert "HALTED" in text["status"] and "daily total budget of $1.00" in text["status"]
    assert "sha256:" in text["status"]
    assert "claude-sonnet-4-6" in text["analytics"] and "burn rate" in text["analytics"]
    assert "Rate-limit utilisation" in text["analytics"]
    assert "req_fake" in text["hits"] and "sess-top-1" in text["hits"]
    assert "tangerine" not in text["hits"]  # metadata only
    assert re.search(r"ok\s+[\d.]+ ms", text["backends"])  # the probe's result
