"""One compat run: install PACKAGE@VERSION from the registry into a scratch directory and run its
CLI headless with an API key (never a login) three times against the built-in echo upstream:
straight at it, through the gateway to a backend of the kind the client speaks (same dialect), and
through the gateway to a backend of the other kind (translated: Anthropic clients to an OpenAI
backend, Codex's Responses to an Anthropic backend).

What the gateway dropped or changed is found two ways, and each item says which found it:
`upstream` (the client sent it straight to the echo upstream, but it did not arrive through the
gateway, or arrived as another JSON type) and the gateway's own word on each answer
(`x-driftgate-dropped`, `x-driftgate-adjusted`), read by a tap between the client and the gateway.
"""

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
from driftgate.watchers.compat.clients import API_KEY, Client, client_for
from driftgate.watchers.compat.echo_upstream import EchoUpstream, Seen
from driftgate.watchers.compat.tap import Tap
from driftgate.watchers.errors import WatchError

RUN_TIMEOUT = 180.0
# Headers every hop sets for itself: not a client's, so never "dropped".
HOP_HEADERS = frozenset({"host", "content-length", "connection", "accept-encoding",
                         "x-api-key", "authorization", "transfer-encoding", "user-agent"})  # fmt: skip
UPSTREAM = "upstream"
# The backend kind a client's dialect goes to unchanged, and the one it is translated to.
SAME_KIND = {"anthropic": "anthropic", "responses": "openai"}
OTHER_KIND = {"anthropic": "openai", "responses": "anthropic"}
ENDPOINT = {"anthropic": "/messages", "responses": "/responses"}


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


def _run(client: Client, bin_path: Path, base_url: str, scratch: Path) -> bool:
    scratch.mkdir(parents=True, exist_ok=True)
    launch = client.launch(bin_path, base_url, scratch)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch), **launch.env}
    try:
        done = subprocess.run(launch.argv, env=env, cwd=launch.cwd, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False, stdin=subprocess.DEVNULL)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _gateway(
    home: Path, echo: EchoUpstream, kind: str, shapes: Path, *, responses: bool
) -> GatewayServer:
    base = echo.url + ("/v1" if kind == "openai" else "")
    # responses: the echo serves /v1/responses itself (a Responses client's same-dialect run);
    # otherwise an OpenAI-kind backend is Chat Completions only, as most are.
    backend = BackendConfig(name=f"compat-{kind}", kind=kind, base_url=base, key=API_KEY,
                            responses=responses or None)  # fmt: skip
    config = Config(home=home, path=home / "config.toml", port=0, backends=(backend,),
                    default_backend=backend.name, shapes=ShapeSettings(path=shapes))  # fmt: skip
    server = GatewayServer(config, env={})
    server.start()
    return server


def _first(seen: Sequence[Seen], endpoint: str) -> Seen | None:
    return next((s for s in seen if s.path.rstrip("/").endswith(endpoint)), None)


def compare(direct: Seen | None, through: Seen | None) -> tuple[list[str], list[str]]:
    """(dropped, changed): body fields and headers the client sent that did not arrive, or
    arrived as another JSON type or beta list."""
    if direct is None or through is None:
        return [], []
    a, b = direct, through
    dropped = [f"body.{k}" for k in a.fields if k not in b.fields]
    dropped += [f"header.{h}" for h in a.headers if h not in b.headers and h not in HOP_HEADERS]
    changed = [f"body.{k}" for k in a.fields if k in b.fields and a.fields[k] != b.fields[k]]
    if a.headers.get("anthropic-beta") != b.headers.get("anthropic-beta"):
        changed.append("header.anthropic-beta")
    return sorted(dropped), sorted(changed)


def _said_name(name: str) -> str:
    # The gateway names a top-level field by its key ("speed") and a header as "header:name";
    # the comparison says "body.speed" and "header.name".
    if name.startswith("header:"):
        return "header." + name[len("header:") :]
    return f"body.{name}" if name.isidentifier() else name


def findings(
    upstream: Sequence[str], said: Sequence[str], source: str, *, details: bool = False
) -> list[dict[str, Any]]:
    """One item per name, saying which sources found it (`upstream` and/or the header)."""
    items: dict[str, dict[str, Any]] = {}
    for name in upstream:
        items.setdefault(name, {"name": name, "found_by": []})["found_by"].append(UPSTREAM)
    for raw in said:
        # x-driftgate-adjusted says "temperature 1.5->1": the field, then what it became.
        field, _, detail = raw.partition(" ") if details else (raw, "", "")
        item = items.setdefault(_said_name(field), {"name": _said_name(field), "found_by": []})
        if source not in item["found_by"]:
            item["found_by"].append(source)
        if detail:
            item.setdefault("details", []).append(detail)
    return [items[k] for k in sorted(items)]


def _through(
    client: Client, bin_path: Path, echo: EchoUpstream, kind: str, root: Path, shapes: Path
) -> tuple[bool, Tap]:
    label = "same" if kind == SAME_KIND[client.speaks] else "translated"
    gateway = _gateway(root / f"gw-{label}", echo, kind, shapes,
                       responses=client.speaks == "responses" and kind == "openai")  # fmt: skip
    tap = Tap(gateway.url).start()
    try:
        ok = _run(client, bin_path, tap.url, root / f"run-{label}") and bool(echo.seen)
    finally:
        tap.stop()
        gateway.stop()
    return ok, tap


def compat_run(
    spec: str,
    registry: str,
    shape_log: Path,
    *,
    scratch: Path | None = None,
    installed: Path | None = None,
) -> dict[str, Any]:
    """The report `--json` prints; `installed`: that release's bin, already installed."""
    package, version = split_spec(spec)
    client = client_for(package)
    endpoint = ENDPOINT[client.speaks]
    same, other = SAME_KIND[client.speaks], OTHER_KIND[client.speaks]
    with tempfile.TemporaryDirectory(prefix="driftgate-compat-") as tmp:
        root = scratch or Path(tmp)
        bin_path = installed or install(package, version, registry, root / "install")
        echo = EchoUpstream()
        echo.start()
        try:
            direct_ok = _run(client, bin_path, echo.url, root / "run-direct") and bool(echo.seen)
            direct_seen = _first(echo.seen, endpoint)
            echo.seen.clear()
            through_ok, tap = _through(client, bin_path, echo, same, root, shape_log)
            dropped, changed = compare(direct_seen, _first(echo.seen, endpoint))
            echo.seen.clear()
            translated_ok, ttap = _through(client, bin_path, echo, other, root, shape_log)
        finally:
            echo.stop()
    dropped_header, adjusted_header = "x-driftgate-dropped", "x-driftgate-adjusted"
    return {
        "package": package,
        "version": version,
        "client": client.name,
        "speaks": client.speaks,
        "direct": {"completed": direct_ok},
        "through_gateway": {
            "completed": through_ok,
            "backend_kind": same,
            "dropped": findings(dropped, tap.said[dropped_header], dropped_header),
            "changed": findings(changed, tap.said[adjusted_header], adjusted_header, details=True),
        },
        "translated": {
            "completed": translated_ok,
            "backend_kind": other,
            "dropped": findings([], ttap.said[dropped_header], dropped_header),
            "changed": findings([], ttap.said[adjusted_header], adjusted_header, details=True),
        },
    }


def _items(items: Sequence[Mapping[str, Any]]) -> str:
    def one(item: Mapping[str, Any]) -> str:
        detail = f" ({', '.join(item['details'])})" if item.get("details") else ""
        return f"`{item['name']}`{detail} [{', '.join(item['found_by'])}]"

    return ", ".join(one(i) for i in items)


KIND_NAME = {"anthropic": "Anthropic-kind", "openai": "OpenAI-kind"}


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as a drift PR section."""

    def yes(ok: bool) -> str:
        return "completed" if ok else "**did not complete**"

    tg, tr = report["through_gateway"], report["translated"]
    lines = [
        f"### Compat run: `{report['package']}@{report['version']}`", "",
        f"- direct to the echo upstream: {yes(report['direct']['completed'])}",
        f"- through the gateway ({KIND_NAME[tg['backend_kind']]} backend, same dialect): "
        f"{yes(tg['completed'])}",
        f"- translated ({KIND_NAME[tr['backend_kind']]} backend): {yes(tr['completed'])}",
    ]  # fmt: skip
    for label, part in (("through the gateway", tg), ("translated", tr)):
        if part["dropped"]:
            lines.append(f"- dropped {label}: {_items(part['dropped'])}")
        if part["changed"]:
            lines.append(f"- changed {label}: {_items(part['changed'])}")
    if any(p["dropped"] or p["changed"] for p in (tg, tr)):
        lines += ["", "[upstream]: sent straight to the echo upstream but not through the gateway; "
                  "[x-driftgate-…]: the gateway's own answer header."]  # fmt: skip
    return "\n".join(lines) + "\n"
