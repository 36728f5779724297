"""One watcher run inside the dead-man's switch: ping start, run, ping success or failure.
A SIGTERM ends the run as exit status 143 so the failure ping still goes out."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TextIO

from driftgate.proxy.config import load_config
from driftgate.proxy.errors import ConfigError, DriftgateError
from driftgate.watchers.catalog import WatcherSpec
from driftgate.watchers.ping import Pinger, ping_url

SIGTERM_STATUS = 128 + signal.SIGTERM


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) in the main thread, so `finally` blocks run."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(SIGTERM_STATUS)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread (a test, an embedding): leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ping_url(env: Mapping[str, str], config_path: Path | None) -> str | None:
    try:
        watch = load_config(env, config_path).watch
    except ConfigError:
        watch = {}  # the watcher itself reports the config problem
    return ping_url(env, watch if isinstance(watch, Mapping) else {})


def run_pinged(
    spec: WatcherSpec,
    args: argparse.Namespace,
    *,
    config_path: Path | None,
    env: Mapping[str, str],
    err: TextIO | None = None,
) -> int:
    """Run `spec` with `args`; pings never change the exit status."""
    err = err or sys.stderr
    pinger = Pinger(_ping_url(env, config_path), err=err)
    what = f"driftgate watch {spec.name}"
    pinger.start(what)
    status = 1
    try:
        with _sigterm_exits():
            status = spec.run(args)
    except DriftgateError as exc:
        print(f"driftgate: {exc}", file=err)
        status = int(getattr(exc, "exit_code", 2))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 1
        raise
    except BaseException:
        status = 1
        raise
    finally:
        pinger.finish(what, status)
    return status
