"""Backend cooldowns shared by the workers of one host (`--workers N` without Redis).

The workers already share DRIFTGATE_HOME: each cooling backend is a small file under
`run/cooldowns/` that says until when (wall clock: one host, one clock) and which worker wrote
it, replaced atomically. Each worker keeps its own copy of the deadlines, which the request
path reads; a poll every `POLL` seconds (one directory listing) brings in what the others
started or cleared. A failure reaches the other workers within `POLL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from driftgate.proxy.cooldown import Cooldowns

log = logging.getLogger("driftgate.cooldowns")
POLL = 0.25  # seconds between two looks at the other workers' cooldowns


def cooldowns_dir(home: Path) -> Path:
    """Where the workers of a gateway keep the cooldowns they share."""
    return home / "run" / "cooldowns"


class FileCooldowns:
    """A cooldown board in a directory: one file per backend a worker cooled."""

    kind = "workers"

    def __init__(
        self,
        directory: Path,
        cooldowns: Cooldowns,
        wall: Callable[[], float] = time.time,
        pid: int | None = None,
    ) -> None:
        self._dir = directory
        self._cooldowns = cooldowns
        self._wall = wall
        self._pid = str(os.getpid() if pid is None else pid)
        self._seen: dict[str, tuple[int, int]] = {}  # file name -> (inode, mtime_ns) last read
        self._poll: asyncio.Task[None] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        cooldowns.board = self

    def shared(self, backend: str, seconds: float) -> None:
        path = self._dir / quote(backend, safe="")
        try:
            if seconds <= 0:
                path.unlink(missing_ok=True)
                return
            tmp = path.with_name(f".{path.name}.{self._pid}")
            tmp.write_text(f"{self._wall() + seconds!r} {self._pid}")
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError as exc:
            log.warning("cooldowns: cannot write %s: %s", path, exc.strerror)

    def refresh(self) -> None:
        """Take in what the other workers started or cleared since the last look."""
        now = self._wall()
        gone = set(self._seen)
        try:
            entries = list(os.scandir(self._dir))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            gone.discard(entry.name)
            try:
                st = entry.stat()
            except OSError:
                continue
            mark = (st.st_ino, st.st_mtime_ns)
            if self._seen.get(entry.name) == mark:
                continue
            self._seen[entry.name] = mark
            try:
                until, pid = Path(entry.path).read_text().split()
                left = float(until) - now
            except (OSError, ValueError):
                continue
            if pid != self._pid and left > 0:
                self._cooldowns.heard(unquote(entry.name), left)
        for name in gone:  # a worker saw the backend answer again
            del self._seen[name]
            self._cooldowns.heard(unquote(name), 0.0)

    async def start(self) -> None:
        """Look now, then every `POLL` seconds."""
        self.refresh()
        self._poll = asyncio.get_running_loop().create_task(self._polling())

    async def _polling(self) -> None:
        while True:
            await asyncio.sleep(POLL)
            self.refresh()

    def health(self) -> dict[str, Any]:
        """For /health: where cooldowns are shared."""
        return {"shared": "workers", "directory": str(self._dir)}

    async def close(self) -> None:
        """Stop polling."""
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
