"""Textual is a dependency of `driftgate top` only: the gateway never imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GATEWAY_START = """
import sys
from pathlib import Path
from driftgate.proxy.cli import build_parser
from driftgate.proxy.config import Config
from driftgate.proxy.server import GatewayServer

build_parser()  # every subcommand registered, `top` included
home = Path(sys.argv[1])
with GatewayServer(Config(home=home, path=home / "config.toml", port=0), env={}) as gw:
    pass
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(",".join(loaded))
"""


def test_starting_the_gateway_loads_neither_textual_nor_rich(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", GATEWAY_START, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "", f"the gateway imported {out.stdout.strip()}"


def test_the_check_can_fail(tmp_path: Path) -> None:
    code = GATEWAY_START.replace("build_parser()", "import driftgate.proxy.top.app")
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "textual" in out.stdout.split(",")
