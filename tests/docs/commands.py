"""The `driftgate` commands shown in the docs: find them, parse them, run the ones that work offline."""

from __future__ import annotations

import contextlib
import io
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from driftgate.proxy.cli import build_parser

from .markdown import ROOT, Block

PROGRAM = ".venv/bin/driftgate"  # where the README's install step puts the command
SHELL_LANGS = ("sh", "console", "bash", "shell")
_SEPARATORS = {"&&", "||", ";", "|", "&", "(", ")", ";;", "|&"}
# Words the docs use as "fill in your own": a command holding one is parsed, never run.
PLACEHOLDERS = frozenset(
    [
        "NAME",
        "KIND",
        "URL",
        "VAR",
        "KEY",
        "PATH",
        "DIR",
        "OWNER/NAME",
        "OLD.json",
        "NEW.json",
        "HOURS",
        "MODEL",
        "BACKEND",
        "PAT",
        "...",
        "…",
    ]
)
# Subcommands that work offline against a scratch home.
RUNNABLE = {
    ("backend", "add"),
    ("backend", "list"),
    ("backend", "remove"),
    ("usage",),
    ("template", "validate"),
}


@dataclass(frozen=True)
class Command:
    """One `driftgate` invocation in a shell block."""

    block: Block
    source: str  # the logical line it came from
    program: str  # as spelled: .venv/bin/driftgate, driftgate, ...
    env: tuple[tuple[str, str], ...]  # VAR=value words before it
    argv: tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.block.where}: {self.source.strip()}"


def logical_lines(block: Block) -> list[str]:
    """Command lines of a shell block: `$ ` prompts in console blocks, continuation lines joined."""
    raw = block.text.splitlines()
    if block.lang == "console":
        lines, current = [], None
        for line in raw:
            if line.startswith("$ "):
                current = line[2:]
                lines.append(current)
            elif lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + line.strip()
        return lines
    out: list[str] = []
    pending = ""
    for line in raw:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending:
        out.append(pending)
    return [line for line in out if line.strip()]


def _simple_commands(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError as exc:  # an unbalanced quote
        raise ValueError(f"cannot split {line!r} as a shell line: {exc}") from None
    out: list[list[str]] = [[]]
    for tok in tokens:
        if tok in _SEPARATORS:
            out.append([])
        else:
            out[-1].append(tok)
    return [c for c in out if c]


def _is_assignment(word: str) -> bool:
    name, sep, _ = word.partition("=")
    return bool(sep) and name.replace("_", "a").isalnum() and not name[0].isdigit()


def driftgate_commands(block: Block) -> list[Command]:
    """Every `driftgate` invocation in a shell block (after VAR=value words and `env -u VAR`)."""
    found: list[Command] = []
    for line in logical_lines(block):
        for words in _simple_commands(line):
            env: list[tuple[str, str]] = []
            i = 0
            while i < len(words):
                if _is_assignment(words[i]):
                    name, _, value = words[i].partition("=")
                    env.append((name, value))
                    i += 1
                elif words[i] == "env":
                    i += 1
                    while i < len(words) and words[i].startswith("-"):
                        i += 2 if words[i] in ("-u", "--unset") else 1
                else:
                    break
            if i < len(words) and Path(words[i]).name == "driftgate":
                found.append(Command(block, line, words[i], tuple(env), tuple(words[i + 1 :])))
    return found


def parse_problem(cmd: Command) -> str | None:
    """Why the real argument parser refuses the command (None: it accepts it)."""
    if cmd.program != PROGRAM:
        return (
            f"{cmd.where}: write {PROGRAM!r}, not {cmd.program!r} (the README's install step "
            "puts driftgate in .venv/bin, not on PATH)"
        )
    parser = build_parser()
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            args = parser.parse_args(list(cmd.argv))
    except SystemExit as exc:
        if exc.code in (0, None):  # --help, --version
            return None
        return f"{cmd.where}: driftgate refuses it: {err.getvalue().strip().splitlines()[-1]}"
    if getattr(args, "handler", None) is None:
        return f"{cmd.where}: names no subcommand"
    return None


def runnable(cmd: Command) -> bool:
    """Whether the command works offline against a scratch home (and holds no placeholder)."""
    if any(w in PLACEHOLDERS for w in cmd.argv):
        return False
    if "--help" in cmd.argv or "-h" in cmd.argv or cmd.argv == ("--version",):
        return True
    words = tuple(w for w in cmd.argv if not w.startswith("-"))
    return words[:1] in RUNNABLE or words[:2] in RUNNABLE


def run(
    cmd: Command, home: Path, extra_env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command as written, from the checkout, with a scratch HOME and DRIFTGATE_HOME."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "DRIFTGATE_HOME": str(home / ".driftgate"),
        "LANG": "C.UTF-8",
        **(extra_env or {}),
        **dict(cmd.env),
    }
    program = Path(sys.executable).with_name("driftgate")
    return subprocess.run(
        [str(program), *cmd.argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
