"""The daemon's run history and heartbeats: SQLite under DRIFTGATE_HOME, one short transaction per
change, so a daemon killed at any moment leaves rows that say what happened (or `running`, which the
next start marks `abandoned`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from driftgate.watchers.errors import StateError

# Each entry upgrades the schema by one version (PRAGMA user_version); never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        scheduled_for TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,   -- running | ok | failed | abandoned | missed | skipped
        exit_code INTEGER,
        pid INTEGER,
        detail TEXT
    );
    CREATE INDEX runs_by_job ON runs (job, id);
    CREATE TABLE heartbeats (
        job TEXT PRIMARY KEY,
        last_run_at TEXT,
        last_status TEXT,
        last_success_at TEXT
    );
    """,
)
DETAIL_LIMIT = 8000  # a traceback's tail is enough; the full log is in the journal


def _now() -> datetime:
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """How times are stored: ISO 8601 UTC, seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_stamp(text: str | None) -> datetime | None:
    """A stored time back as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) if text else None


@dataclass(frozen=True)
class RunRow:
    """One recorded run (or a missed / skipped firing)."""

    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    detail: str | None


def store_path(home: Path) -> Path:
    """Where the daemon keeps its history."""
    return home / "daemon.sqlite3"


class RunStore:
    """Run history and heartbeats; safe to use from the scheduler's threads (one connection a call)."""

    def __init__(self, path: Path, clock: Callable[[], datetime] = _now) -> None:
        self.path = path
        self.clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > len(MIGRATIONS):
                    raise StateError(
                        f"{path}: written by a newer driftgate (schema {version}); upgrade driftgate"
                    )
                for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                    db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        except sqlite3.Error as exc:
            raise StateError(f"{path}: cannot open the daemon's run history: {exc}") from exc

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            yield db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._connect() as db:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StateError(f"{self.path}: cannot write the daemon's run history: {exc}") from exc

    def start_run(self, job: str, scheduled_for: datetime | None = None) -> int:
        """Record that `job` started; returns the run's id."""
        now = stamp(self.clock())
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (job, scheduled_for, started_at, status) VALUES (?, ?, ?, 'running')",
                (job, stamp(scheduled_for) if scheduled_for else None, now),
            )
            db.execute(
                "INSERT INTO heartbeats (job, last_run_at, last_status) VALUES (?, ?, 'running') "
                "ON CONFLICT (job) DO UPDATE SET last_run_at = excluded.last_run_at, "
                "last_status = 'running'",
                (job, now),
            )
            return int(cursor.lastrowid or 0)

    def set_pid(self, run_id: int, pid: int) -> None:
        """The process running `run_id` (to tell an abandoned run's process later)."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

    def finish_run(
        self, run_id: int, status: str, exit_code: int | None, detail: str | None = None
    ) -> None:
        """Record how run `run_id` ended; a success is the job's heartbeat."""
        now = stamp(self.clock())
        with self._transaction() as db:
            row = db.execute("SELECT job FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StateError(f"{self.path}: no run {run_id}")
            db.execute(
                "UPDATE runs SET finished_at = ?, status = ?, exit_code = ?, detail = ? WHERE id = ?",
                (now, status, exit_code, (detail or "")[-DETAIL_LIMIT:] or None, run_id),
            )
            success = now if status == "ok" else None
            db.execute(
                "UPDATE heartbeats SET last_status = ?, "
                "last_success_at = COALESCE(?, last_success_at) WHERE job = ?",
                (status, success, row[0]),
            )

    def record_event(self, job: str, status: str, detail: str) -> None:
        """A firing that did not run: `missed` (past the grace time) or `skipped` (still running)."""
        now = stamp(self.clock())
        with self._transaction() as db:
            db.execute(
                "INSERT INTO runs (job, started_at, finished_at, status, detail) VALUES (?, ?, ?, ?, ?)",
                (job, now, now, status, detail),
            )

    def abandon_running(self, detail: str) -> int:
        """Mark every `running` row abandoned (at start-up, or after a stop that could not wait)."""
        now = stamp(self.clock())
        with self._transaction() as db:
            jobs = [
                r[0] for r in db.execute("SELECT DISTINCT job FROM runs WHERE status = 'running'")
            ]
            cursor = db.execute(
                "UPDATE runs SET status = 'abandoned', finished_at = ?, detail = ? WHERE status = 'running'",
                (now, detail),
            )
            for job in jobs:
                db.execute("UPDATE heartbeats SET last_status = 'abandoned' WHERE job = ?", (job,))
            return cursor.rowcount

    def last_success(self, job: str) -> datetime | None:
        """When `job` last succeeded (its heartbeat)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT last_success_at FROM heartbeats WHERE job = ?", (job,)
            ).fetchone()
        return parse_stamp(row[0]) if row else None

    def first_run(self, job: str) -> datetime | None:
        """When `job` first started under a daemon (None: never)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT MIN(started_at) FROM runs WHERE job = ? AND status NOT IN ('missed', 'skipped')",
                (job,),
            ).fetchone()
        return parse_stamp(row[0]) if row else None

    def runs(self, job: str | None = None, limit: int = 20) -> list[RunRow]:
        """The most recent runs, newest first (of one job, or all)."""
        query = "SELECT id, job, started_at, finished_at, status, exit_code, detail FROM runs"
        args: tuple[object, ...] = ()
        if job is not None:
            query += " WHERE job = ?"
            args = (job,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [
            RunRow(
                r[0], r[1], parse_stamp(r[2]) or self.clock(), parse_stamp(r[3]), r[4], r[5], r[6]
            )
            for r in rows
        ]

    def last_run(self, job: str) -> RunRow | None:
        """The most recent real run of `job` (missed and skipped firings left out)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT id, job, started_at, finished_at, status, exit_code, detail FROM runs "
                "WHERE job = ? AND status NOT IN ('missed', 'skipped') ORDER BY id DESC LIMIT 1",
                (job,),
            ).fetchone()
        if row is None:
            return None
        return RunRow(
            row[0],
            row[1],
            parse_stamp(row[2]) or self.clock(),
            parse_stamp(row[3]),
            row[4],
            row[5],
            row[6],
        )
