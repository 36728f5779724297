"""The live stream with `--workers N`: every worker's records, read back from the usage file.

A connection to /analytics/stream lands on one worker, whose own records are a part of the
traffic. Every worker writes its records to the same `usage.sqlite3`, so the stream follows that
file instead: the rows added since the stream began, in the order they were written, read in a
thread every POLL_SECONDS (a record reaches the stream within about a batch interval plus that).
Nothing is read while no one follows the stream.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from driftgate.proxy.observe.records import COLUMNS, RequestRecord

POLL_SECONDS = 0.25
BATCH = 500  # rows a read returns at most (a stream behind reads again at once)
_SELECT = f"SELECT id, {', '.join(COLUMNS)} FROM usage WHERE id > ? ORDER BY id LIMIT ?"


class UsageTail:
    """The rows added to the usage file after `open()`, as /analytics/stream documents."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._last = 0

    def open(self) -> None:
        """Start at the file's end (in a thread: it reads the file)."""
        db = sqlite3.connect(
            f"file:{self._path}?mode=ro", uri=True, check_same_thread=False, timeout=5
        )
        self._db = db
        self._last = int(db.execute("SELECT COALESCE(MAX(id), 0) FROM usage").fetchone()[0])

    def take(self) -> list[dict[str, Any]]:
        """The next rows, at most BATCH, oldest first (in a thread)."""
        assert self._db is not None
        rows = self._db.execute(_SELECT, (self._last, BATCH)).fetchall()
        if rows:
            self._last = int(rows[-1][0])
        return [RequestRecord(*row[1:]).as_json() for row in rows]

    def close(self) -> None:
        """Release the file."""
        if self._db is not None:
            self._db.close()
            self._db = None
