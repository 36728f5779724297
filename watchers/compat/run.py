"""One compat run: install PACKAGE@VERSION from the registry into a scratch directory, run its
CLI headless with an API key (never a login) three times: straight at the echo upstream, through
the gateway to an Anthropic-kind backend, and through the gateway to an OpenAI-kind backend
(translated). What the gateway dropped or changed is what the echo upstream saw directly but not,
or not the same, through the gateway."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.observe.shape_settings import ShapeSettings
from driftgate.proxy.server import GatewayServer
from driftgate.watchers.compat.echo_upstream import EchoUpstream, Seen
from driftgate.watchers.errors import WatchError

PROMPT = "Reply with the word ok."
API_KEY = "compat-run-key-not-a-secret"  # the echo upstream accepts any key
RUN_TIMEOUT = 180.0
# Headers every hop sets for itself: not a client's, so never "dropped".
HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding",
                         "x-api-key", "authorization", "transfer-encoding", "user-agent"})  # fmt: skip


def split_spec(spec: str) -> tuple[str, str]:
    """`@scope/name@1.2.3` -> (`@scope/name`, `1.2.3`); the version is required."""
    name, sep, version = spec.rpartition("@")
    if not sep or not name or not version:
        raise WatchError(f"{spec!r}: give PACKAGE@VERSION, e.g. @anthropic-ai/claude-code@2.1.332")
    return name, version


def install(package: str, version: str, registry: str, directory: Path) -> Path:
    """`npm install` that exact version; the path of its first bin."""
    argv = ["npm", "install", "--prefix", str(directory), "--no-audit", "--no-fund",
            "--registry", registry, f"{package}@{version}"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "npm_config_update_notifier": "false"})  # fmt: skip
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise WatchError(f"npm install {package}@{version} failed: {tail}")
    manifest = json.loads((directory / "node_modules" / package / "package.json").read_text())
    bins = manifest.get("bin")
    name = package.rsplit("/", 1)[-1] if isinstance(bins, str) else next(iter(bins or {}), None)
    if not name:
        raise WatchError(f"{package}@{version} has no command (no bin in its package.json)")
    return directory / "node_modules" / ".bin" / str(name)


def headless(package: str, bin_path: Path) -> list[str]:
    """The headless command line: `claude -p`, `codex exec`, else the bin with the prompt."""
    if package.endswith("claude-code"):
        return [str(bin_path), "-p", PROMPT]
    if package.endswith("codex"):
        return [str(bin_path), "exec", PROMPT]
    return [str(bin_path), PROMPT]


def _run(argv: Sequence[str], base_url: str, home: Path) -> bool:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": API_KEY,
           "OPENAI_BASE_URL": base_url + "/v1", "OPENAI_API_KEY": API_KEY}  # fmt: skip
    try:
        done = subprocess.run(list(argv), env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _gateway(home: Path, echo: EchoUpstream, kind: str, shapes: Path) -> GatewayServer:
    base = echo.url + ("/v1" if kind == "openai" else "")
    backend = BackendConfig(name=f"compat-{kind}", kind=kind, base_url=base, key=API_KEY)
    config = Config(home=home, path=home / "config.toml", port=0, backends=(backend,),
                    default_backend=backend.name, shapes=ShapeSettings(path=shapes))  # fmt: skip
    server = GatewayServer(config, env={})
    server.start()
    return server


def compare(direct: Sequence[Seen], through: Sequence[Seen]) -> tuple[list[str], list[str]]:
    """(dropped, changed): body fields and headers the client sent that did not arrive, or
    arrived as another JSON type or beta list."""
    if not direct or not through:
        return [], []
    a, b = direct[0], through[0]
    dropped = [f"body.{k}" for k in a.fields if k not in b.fields]
    dropped += [f"header.{h}" for h in a.headers if h not in b.headers and h not in HOP_HEADERS]
    changed = [f"body.{k}" for k in a.fields if k in b.fields and a.fields[k] != b.fields[k]]
    if a.headers.get("anthropic-beta") != b.headers.get("anthropic-beta"):
        changed.append("header.anthropic-beta")
    return sorted(dropped), sorted(changed)


def compat_run(
    spec: str, registry: str, shape_log: Path, *, scratch: Path | None = None
) -> dict[str, Any]:
    """The report `--json` prints."""
    package, version = split_spec(spec)
    with tempfile.TemporaryDirectory(prefix="driftgate-compat-") as tmp:
        root = scratch or Path(tmp)
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        argv = headless(package, install(package, version, registry, root / "install"))
        echo = EchoUpstream().start()
        try:
            direct_ok = _run(argv, echo.url, home) and bool(echo.seen)
            direct_seen = list(echo.seen)
            echo.seen.clear()
            gateway = _gateway(root / "gw-anthropic", echo, "anthropic", shape_log)
            try:
                through_ok = _run(argv, gateway.url, home) and bool(echo.seen)
            finally:
                gateway.stop()
            dropped, changed = compare(direct_seen, echo.seen)
            echo.seen.clear()
            gateway = _gateway(root / "gw-openai", echo, "openai", shape_log)
            try:
                translated_ok = _run(argv, gateway.url, home) and bool(echo.seen)
            finally:
                gateway.stop()
        finally:
            echo.stop()
    return {
        "package": package,
        "version": version,
        "direct": {"completed": direct_ok},
        "through_gateway": {"completed": through_ok, "dropped": dropped, "changed": changed},
        "translated": {"completed": translated_ok, "backend_kind": "openai"},
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as a drift PR section."""

    def yes(ok: bool) -> str:
        return "completed" if ok else "**did not complete**"

    tg = report["through_gateway"]
    lines = [
        f"### Compat run: `{report['package']}@{report['version']}`", "",
        f"- direct to the echo upstream: {yes(report['direct']['completed'])}",
        f"- through the gateway (Anthropic-kind backend): {yes(tg['completed'])}",
        f"- translated (OpenAI-kind backend): {yes(report['translated']['completed'])}",
    ]  # fmt: skip
    if tg["dropped"]:
        lines.append("- dropped by the gateway: " + ", ".join(f"`{d}`" for d in tg["dropped"]))
    if tg["changed"]:
        lines.append("- changed by the gateway: " + ", ".join(f"`{c}`" for c in tg["changed"]))
    return "\n".join(lines) + "\n"
