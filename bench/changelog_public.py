"""`driftgate changelog PACKAGE --last N` against the real npm registry: cold (a fresh
DRIFTGATE_HOME) then warm (the same home), timed as a user runs it (a new process each).

    .venv/bin/python bench/changelog_public.py --public                # claude-code, last 10
    .venv/bin/python bench/changelog_public.py --public --package openai --last 5

Targets (issue 10): cold <= 30 s, warm <= 2 s. Exit status 0 when both are met, 1 when not,
2 when the command failed. Without --public it only says what it would do: it is the one
benchmark that needs the public registry.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLD_TARGET_S = 30.0
WARM_TARGET_S = 2.0


def timed(argv: list[str], home: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Seconds the command took, and its result."""
    env = {**os.environ, "DRIFTGATE_HOME": str(home)}  # the machine's CA and proxy settings
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    return time.perf_counter() - started, done


def main(argv: list[str] | None = None) -> int:
    """Run cold then warm; print both figures and the changelog."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--public", action="store_true", help="run against the real npm registry")
    p.add_argument("--package", default="@anthropic-ai/claude-code")
    p.add_argument("--last", type=int, default=10)
    args = p.parse_args(argv)
    command = [sys.executable, "-m", "driftgate.proxy.cli", "changelog", args.package,
               "--last", str(args.last), "--registry", "https://registry.npmjs.org/"]  # fmt: skip
    if not args.public:
        print("would run:", " ".join(command), "(cold, then warm); pass --public to run it")
        return 0
    with tempfile.TemporaryDirectory(prefix="driftgate-changelog-") as tmp:
        home = Path(tmp)
        cold, first = timed(command, home)
        warm, second = timed(command, home)
    for done in (first, second):
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 2
    print(second.stdout)
    ok_cold, ok_warm = cold <= COLD_TARGET_S, warm <= WARM_TARGET_S
    print(f"cold: {cold:.2f} s (target <= {COLD_TARGET_S:g} s) {'PASS' if ok_cold else 'FAIL'}")
    print(f"warm: {warm:.2f} s (target <= {WARM_TARGET_S:g} s) {'PASS' if ok_warm else 'FAIL'}")
    return 0 if ok_cold and ok_warm else 1


if __name__ == "__main__":
    raise SystemExit(main())
