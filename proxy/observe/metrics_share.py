"""/metrics with `--workers N`: every worker's totals, added up by whichever worker is scraped.

Prometheus scrapes one port, and the kernel hands the scrape to any worker: each worker's own
numbers would jump between scrapes. So each worker writes its totals (counters, histograms and
the live numbers) to a JSON file named for its pid under DRIFTGATE_HOME/run/metrics/, at most once
a second on the recorder's thread (never on the request path) and on every scrape it answers, and
a scrape adds every file's totals to its own. The file of a worker that died stays, so counters
never go down when a worker is replaced; the supervisor empties the directory when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("driftgate.metrics")
WRITE_EVERY = 1.0  # seconds between a worker's snapshots while records arrive


def metrics_dir(home: Path) -> Path:
    """Where the workers of a gateway keep their /metrics totals."""
    return home / "run" / "metrics"


def clear(directory: Path) -> None:
    """Forget the totals of a previous run (the supervisor, before it starts workers)."""
    if directory.is_dir():
        for path in directory.glob("*.json"):
            with contextlib.suppress(OSError):
                path.unlink()


class SharedTotals:
    """This worker's snapshot file, and the other workers' snapshots."""

    def __init__(
        self,
        directory: Path,
        snapshot: Callable[[], dict[str, Any]],
        pid: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = directory
        self._snapshot = snapshot
        self._pid = os.getpid() if pid is None else pid
        self._clock = clock
        self._last = float("-inf")
        self._dirty = False
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{self._pid}.json"

    def sink(self, records: Sequence[object]) -> None:
        """A record sink: write this worker's snapshot when the last one is a second old."""
        self._dirty = True
        if self._clock() - self._last >= WRITE_EVERY:
            self.write()

    async def keep_written(self) -> None:
        """Write the snapshot a batch left unwritten (the last of a burst), once a second."""
        while True:
            await asyncio.sleep(WRITE_EVERY)
            if self._dirty:
                await asyncio.to_thread(self.write)

    def write(self) -> None:
        """Write this worker's totals now (atomically: a reader never sees half a file)."""
        self._last = self._clock()
        self._dirty = False
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_bytes(orjson.dumps(self._snapshot()))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("metrics: cannot write %s: %s", self.path, exc.strerror)

    def others(self) -> list[dict[str, Any]]:
        """Every other worker's last snapshot (unreadable ones are skipped)."""
        out: list[dict[str, Any]] = []
        for path in self._dir.glob("*.json"):
            if path == self.path:
                continue
            try:
                out.append(orjson.loads(path.read_bytes()))
            except (OSError, orjson.JSONDecodeError):
                continue  # a file being replaced, or gone
        return out
