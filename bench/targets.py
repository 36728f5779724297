"""The rows of each table: how to start each target in its own process, pointed at the fake upstream."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import litellm_setup

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


@dataclass(frozen=True)
class Launch:
    """What a target needs to start: where the upstream is, its port, a scratch directory."""

    upstream: str
    port: int
    workdir: Path
    driftgate_args: tuple[str, ...] = ()  # extra flags for `driftgate proxy`, for experiments


@dataclass(frozen=True)
class Command:
    """A process to start: argv, environment and health URL path."""

    argv: list[str]
    env: dict[str, str]
    ready_path: str
    startup_timeout: float


@dataclass(frozen=True)
class Target:
    """One row: `command` is None for `direct` (wrk talks to the upstream itself).

    `spread` runs the row on CPUs 0-1, beside the upstream and wrk, instead of the one CPU every
    other row has (bench/README.md, "Pinning the workers rows").
    """

    name: str
    label: str
    command: Callable[[Launch], Command] | None
    spread: bool = False


def _base_env(home: Path) -> dict[str, str]:
    # Only what a Python process needs: no provider keys from the caller's environment leak in.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}


def _minimal(client: str) -> Callable[[Launch], Command]:
    def command(ctx: Launch) -> Command:
        argv = [sys.executable, str(BENCH_DIR / "minimal_passthrough.py"), "--port", str(ctx.port),
                "--upstream", ctx.upstream, "--client", client]  # fmt: skip
        env = _base_env(ctx.workdir) | {"PYTHONPATH": str(REPO)}  # --client driftgate imports proxy
        return Command(argv, env, "/", 30.0)

    return command


DRIFTGATE_CONFIG = """\
# Written by bench/targets.py for the benchmark.
[gateway]
host = "127.0.0.1"
port = {port}

[backends.fake-anthropic]
kind = "anthropic"
base_url = "{upstream}"
key = "bench-key"
models = ["claude-*"]

[backends.fake-openai]
kind = "openai"
base_url = "{upstream}/v1"
key = "bench-key"
models = ["gpt-*"]
responses = true

[backends.fake-chat]
kind = "openai"
base_url = "{upstream}/v1"
key = "bench-key"
models = ["llama-*"]
responses = false
"""


def _driftgate(
    transport: str, observe: bool = True, extra_toml: str = "", variant: str = ""
) -> Callable[[Launch], Command]:
    def command(ctx: Launch) -> Command:
        return driftgate_command(ctx, transport, extra_toml, variant, observe=observe)

    return command


# The `driftgate-observe-off` row: the same gateway with the analytics records and /metrics off,
# to measure what they cost (the target: on keeps >= 0.9x the throughput of off).
OBSERVE_OFF = """
[analytics]
enabled = false

[metrics]
enabled = false
"""


def driftgate_command(
    ctx: Launch,
    transport: str = "fast",
    extra_toml: str = "",
    variant: str = "",
    *,
    observe: bool = True,
) -> Command:
    """`python -m driftgate.proxy.cli --config <toml> proxy --port <p>` with a scratch DRIFTGATE_HOME.

    `transport` is every backend's `transport` key: "fast" (the default) or "aiohttp";
    `observe=False` turns [analytics] and [metrics] off; `extra_toml` is appended to the config
    (`variant` keeps its home and file apart).
    """
    name = f"driftgate-{transport}{variant}" + ("" if observe else "-observe-off")
    home = ctx.workdir / f"{name}-home"
    home.mkdir(parents=True, exist_ok=True)
    config = ctx.workdir / f"{name}.toml"
    text = DRIFTGATE_CONFIG.format(port=ctx.port, upstream=ctx.upstream) + extra_toml
    if transport != "fast":
        text = text.replace(
            'key = "bench-key"\n', f'key = "bench-key"\ntransport = "{transport}"\n'
        )
    config.write_text(text if observe else text + OBSERVE_OFF)
    env = _base_env(ctx.workdir) | {"DRIFTGATE_HOME": str(home), "PYTHONPATH": str(REPO)}
    argv = [
        sys.executable,
        "-m",
        "driftgate.proxy.cli",
        "--config",
        str(config),
        "proxy",
        "--port",
        str(ctx.port),
        *ctx.driftgate_args,
    ]
    return Command(argv, env, "/health", 60.0)


def baseline(
    source: Path, extra_toml: str = "", row: str = "", label: str = "", workers: int = 1
) -> Target:
    """driftgate from another checkout of this repository (e.g. main before a change), same config.

    Its `proxy/` and `watchers/` are imported through a `driftgate` package shim put first on
    PYTHONPATH, ahead of this checkout's editable install, so both builds run in one benchmark.
    `extra_toml`, `row` and `label` make it the baseline of another row (the guard in Redis,
    --workers 2); `workers` > 1 runs it as `--workers N`.
    """
    source = source.resolve()
    if not (source / "proxy" / "app.py").is_file() or not (source / "pyproject.toml").is_file():
        raise SystemExit(f"--baseline {source}: not a checkout of driftgate (no proxy/app.py)")

    def command(ctx: Launch) -> Command:
        shim = ctx.workdir / "baseline-shim" / "driftgate"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text("")
        for name in ("proxy", "watchers"):
            link = shim / name
            if not link.is_symlink():
                link.symlink_to(source / name)
        _baseline_metadata(source, shim.parent)
        cmd = driftgate_command(ctx, "fast", extra_toml, f"-baseline{row}")
        env = cmd.env | {"PYTHONPATH": f"{shim.parent}{os.pathsep}{REPO}"}
        if workers > 1:
            return Command([*cmd.argv, "--workers", str(workers)], env, cmd.ready_path, 90.0)
        return Command(cmd.argv, env, cmd.ready_path, cmd.startup_timeout)

    return Target(
        f"driftgate{row}-baseline", f"driftgate{label} (baseline: {source.name})", command
    )


def _baseline_metadata(source: Path, where: Path) -> None:
    """A dist-info for the baseline beside its shim, with the entry points of its own pyproject:
    found first on PYTHONPATH, its commands are the ones `driftgate` loads (not this checkout's,
    which may name modules the baseline does not have)."""
    project = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    info = where / f"driftgate-{project['version']}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: driftgate\nVersion: {project['version']}\n"
    )
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    lines = []
    for group, entries in groups.items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
        lines.append("")
    (info / "entry_points.txt").write_text("\n".join(lines))


def litellm_command(ctx: Launch) -> Command:
    """LiteLLM's proxy from bench/.venv-litellm with a config.yaml aimed at the fake upstream."""
    config = litellm_setup.write_config(ctx.workdir / "litellm-config.yaml", ctx.upstream)
    env = litellm_setup.litellm_env(ctx.workdir, os.environ.get("PATH", "/usr/bin:/bin"))
    return Command(litellm_setup.litellm_argv(config, ctx.port), env, "/health/liveliness", 180.0)


DIRECT = Target("direct", "direct", None)
MINIMAL = Target("minimal", "minimal", _minimal("aiohttp"))
MINIMAL_DRIFTGATE_CLIENT = Target(
    "minimal-driftgate-client", "minimal (driftgate's client)", _minimal("driftgate")
)
MINIMAL_HTTPX = Target("minimal-httpx", "minimal (httpx)", _minimal("httpx"))
MINIMAL_HTTPX_AIOHTTP = Target(
    "minimal-httpx-aiohttp", "minimal (httpx-aiohttp)", _minimal("httpx-aiohttp")
)
DRIFTGATE = Target("driftgate", "driftgate", _driftgate("fast"))
DRIFTGATE_AIOHTTP = Target(
    "driftgate-aiohttp", "driftgate (aiohttp transport)", _driftgate("aiohttp")
)
DRIFTGATE_OBSERVE_OFF = Target(
    "driftgate-observe-off",
    "driftgate (analytics+metrics off)",
    _driftgate("fast", observe=False),
)
DRIFTGATE_SHAPES_OFF = Target(
    "driftgate-shapes-off",
    "driftgate (shape log off)",
    _driftgate("fast", True, "\n[shapes]\nenabled = false\n", "-shapes-off"),
)
# The `--redis-guard` rows: the spend guard on (a budget never reached, so every request reserves
# and settles) with its embedded store, and with its state in Redis (the target: >= 0.9x).
GUARD_ON = "\n[guard]\ndaily_usd = 1000000000\n"
DRIFTGATE_GUARD = Target(
    "driftgate-guard",
    "driftgate (guard, embedded store)",
    _driftgate("fast", True, GUARD_ON, "-guard"),
)


def guard_redis_toml(redis_url: str, prefix: str = "driftgate:") -> str:
    """The guard-in-Redis rows' config: a budget never reached, its state in `redis_url`."""
    return GUARD_ON + f'\n[state]\nredis_url = "{redis_url}"\nkey_prefix = "{prefix}"\n'


def driftgate_guard_redis(redis_url: str) -> Target:
    """The guard with its state in the Redis at `redis_url` (started by the benchmark)."""
    return Target(
        "driftgate-guard-redis",
        "driftgate (guard in Redis)",
        _driftgate("fast", True, guard_redis_toml(redis_url), "-guard-redis"),
    )


def _workers(count: int, extra_toml: str = "", variant: str = "") -> Callable[[Launch], Command]:
    def command(ctx: Launch) -> Command:
        base = driftgate_command(ctx, "fast", extra_toml, f"-workers-{count}{variant}")
        return Command([*base.argv, "--workers", str(count)], base.env, base.ready_path, 90.0)

    return command


# The `driftgate-workers-2` row: the same gateway as `driftgate` as two worker processes on one
# port (`--workers 2`); its CPU per request is every process's (supervisor and workers).
DRIFTGATE_WORKERS_2 = Target("driftgate-workers-2", "driftgate (--workers 2)", _workers(2))
# With --workers-spread: the same two workers on CPUs 0-1, a core each in name, the second
# sharing its core with the upstream and wrk; for comparison, not checked.
DRIFTGATE_WORKERS_2_SPREAD = Target(
    "driftgate-workers-2-spread",
    "driftgate (--workers 2, CPUs 0-1)",
    _workers(2, "", "-spread"),
    spread=True,
)
# With --guard-on too: two workers with the spend guard on, their state in one SQLite file
# (the shared store), against `driftgate-guard` (one process, guard on).
DRIFTGATE_WORKERS_2_GUARD = Target(
    "driftgate-workers-2-guard", "driftgate (--workers 2, guard)", _workers(2, GUARD_ON, "-guard")
)


LITELLM = Target("litellm", "litellm", litellm_command)


def postgres_toml(url: str) -> str:
    """The config lines that send a row's records to PostgreSQL at `url`."""
    return f'\n[analytics]\ndatabase_url = "{url}"\n'


def driftgate_postgres(url: str) -> Target:
    """The `driftgate-postgres` row: records to PostgreSQL at `url` instead of SQLite (the default
    row), to measure what the COPY writer costs (the target: >= 0.9x the default's req/s)."""
    toml = postgres_toml(url)
    return Target(
        "driftgate-postgres",
        "driftgate (PostgreSQL analytics)",
        _driftgate("fast", True, toml, "-postgres"),
    )
