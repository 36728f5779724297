"""`driftgate proxy`: run the gateway in the foreground."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from driftgate.proxy.config import Config, load_config

EPILOG = """examples:
  driftgate proxy                          # http://127.0.0.1:3456, backends from config or ANTHROPIC_API_KEY/OPENAI_API_KEY
  driftgate proxy --port 8080 --log-level debug
  driftgate proxy --workers auto           # one worker process per core on the same port
  DRIFTGATE_API_KEY=... driftgate proxy --host 0.0.0.0   # beyond loopback a gateway key is required

Point clients at it: ANTHROPIC_BASE_URL=http://127.0.0.1:3456, OPENAI_BASE_URL=http://127.0.0.1:3456/v1.
Precedence: flags > environment (DRIFTGATE_HOST, DRIFTGATE_PORT, DRIFTGATE_LOG_LEVEL,
DRIFTGATE_TEMPLATES_DIR, DRIFTGATE_WORKERS) > config file ([gateway] host, port, log_level,
templates_dir, workers). SIGHUP reloads the config file and the templates without dropping
connections; SIGTERM or Ctrl-C drains requests in flight (up to shutdown_grace), then exits."""


def register(sub: Any) -> None:
    """Attach `driftgate proxy` to the root parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "proxy",
        help="run the gateway (Anthropic Messages, OpenAI Chat Completions and Responses on one port)",
        description="Run the gateway in the foreground until Ctrl-C.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--host",
        metavar="HOST",
        help="address to bind (default 127.0.0.1, env DRIFTGATE_HOST; anything else needs "
        "DRIFTGATE_API_KEY)",
    )
    p.add_argument(
        "--port",
        metavar="PORT",
        type=int,
        help="port to listen on (default 3456, env DRIFTGATE_PORT; 0 = any free)",
    )
    p.add_argument(
        "--templates-dir",
        metavar="DIR",
        help="overlay directory of approved templates, reloaded on change (env DRIFTGATE_TEMPLATES_DIR)",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        help="worker processes sharing the port, each with its own event loop: a number, or auto "
        "(one per core this process may use, capped by a container's CPU quota); default 1 "
        "(env DRIFTGATE_WORKERS). See docs/scale-out.md",
    )
    p.add_argument("--worker-link", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info: one line per request; env DRIFTGATE_LOG_LEVEL)",
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the config, apply the flags, serve (one process, or a supervisor and its workers)."""
    if args.worker_link is not None:
        # Until its loop handles them: a reload asked of a starting worker is not its death, and
        # Ctrl-C reaches the whole process group: the supervisor turns it into one SIGTERM.
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = config_for(args, os.environ)

    def load() -> Config:  # SIGHUP: the file and the environment again, under the same flags
        return config_for(args, os.environ)

    if args.worker_link is None and config.worker_processes > 1:
        from driftgate.proxy.observe.json_logs import setup_logging
        from driftgate.proxy.serve.supervisor import Supervisor
        from driftgate.proxy.serve.worker_fork import preload

        setup_logging(config.log_level, config.log_format)

        def command(index: int, fd: int, port: int) -> list[str]:
            # The address is the one the supervisor holds, even after a reload changed the file.
            pinned = ["--host", config.host, "--port", str(port)]
            return [*worker_command(args), *pinned, "--worker-link", str(fd)]

        def worker_main(index: int, link: socket.socket, port: int) -> int:
            # In a fork: what `command` runs, without a new interpreter importing it all again.
            def pinned_load() -> Config:
                return config_for(args, os.environ).with_overrides(host=config.host, port=port)

            return run_worker(pinned_load, link)

        preload()
        supervisor = Supervisor(
            config, config.worker_processes, command, load, worker_main=worker_main
        )
        return supervisor.run()

    from driftgate.proxy.server import run_forever  # the server stack loads only for this command

    link = socket.socket(fileno=args.worker_link) if args.worker_link is not None else None
    run_forever(config, load, link)
    return 0


def run_worker(load: Callable[[], Config], link: socket.socket) -> int:
    """A forked worker: its own log handler, its config read as a new worker's, then serve."""
    from driftgate.proxy.errors import DriftgateError
    from driftgate.proxy.server import run_forever

    logging.getLogger().handlers.clear()  # the supervisor's: run_forever sets a worker's
    try:
        run_forever(load(), load, link)
    except DriftgateError as exc:  # as `driftgate` itself reports it
        print(f"driftgate: {exc}", file=sys.stderr)
        return 2
    return 0


def worker_command(args: argparse.Namespace) -> list[str]:
    """The command line of one worker: this `driftgate proxy` with the same flags."""
    argv = [sys.executable, "-m", "driftgate.proxy.cli"]
    if args.config:
        argv += ["--config", str(Path(args.config).resolve())]
    argv.append("proxy")
    for flag, value in (
        ("--host", args.host),
        ("--templates-dir", args.templates_dir),
        ("--log-level", args.log_level),
        ("--workers", args.workers),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def config_for(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """The file, then the environment (DRIFTGATE_*), then these flags: each wins over the last."""
    config = load_config(env, Path(args.config) if args.config else None)
    return config.with_overrides(
        host=args.host,
        port=args.port,
        templates_dir=Path(args.templates_dir).expanduser() if args.templates_dir else None,
        log_level=args.log_level,
        workers=args.workers,
    )
