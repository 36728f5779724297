"""The README's front: its two opening commands, its length, and the links that hold the manual together."""

from __future__ import annotations

from pathlib import Path

from .commands import SHELL_LANGS, Command, driftgate_commands
from .markdown import ROOT, Block, anchors, blocks, links

TEST_COMMAND = "./tests/run"  # CI runs the test command the README gives
MAX_README_LINES = 300


def opening_problems(readme: Path, text: str | None = None) -> list[str]:
    """The first two command blocks must be install-and-run, then exactly ./tests/run."""
    shell = [b for b in blocks(readme, text) if b.lang in SHELL_LANGS]
    if len(shell) < 2:
        return [f"{readme.name}: fewer than two command blocks"]
    main, tests = shell[0], shell[1]
    out = []
    if "pip install" not in main.text or not driftgate_commands(main):
        out.append(f"{main.where}: the first command block must install driftgate and run it")
    if tests.text.strip() != TEST_COMMAND:
        out.append(f"{tests.where}: the second command block must be exactly {TEST_COMMAND!r}")
    return out


def main_job(readme: Path) -> tuple[Block, Command]:
    """The opening block and the driftgate command it ends with (the part after the install)."""
    first = next(b for b in blocks(readme) if b.lang in SHELL_LANGS)
    return first, driftgate_commands(first)[-1]


def link_problems(page: Path, text: str | None = None) -> list[str]:
    """Relative links that point at no file, or at a heading the target page does not have."""
    text = page.read_text() if text is None else text
    out = []
    for target in links(text):
        if "://" in target or target.startswith("mailto:"):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (page.parent / path_part).resolve() if path_part else page
        if not dest.exists():
            out.append(f"{page.name}: link {target!r} points at no file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text()):
            out.append(f"{page.name}: link {target!r}: {dest.name} has no heading #{anchor}")
    return out


def unlinked_pages(index: Path, pages: list[Path], text: str | None = None) -> list[Path]:
    """Pages the index does not link to."""
    text = index.read_text() if text is None else text
    linked = {(index.parent / t.partition("#")[0]).resolve() for t in links(text) if "://" not in t}
    return [p for p in pages if p.resolve() not in linked]


def manual_pages(root: Path = ROOT) -> list[Path]:
    """docs/*.md except the index itself."""
    return [p for p in sorted((root / "docs").glob("*.md")) if p.name != "README.md"]


def section(text: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of the same level."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"## {heading}")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start + 1 : end])
