"""A real PostgreSQL on loopback: Debian's server binaries, a scratch cluster, a free port.

`init_cluster()` runs initdb once (the slow part, ~1-2 s); `cluster.server()` copies that data
directory and starts a postmaster on a free loopback port, so a test that stops and starts its
own server costs a copy and a start. As root (here and in CI) initdb refuses to run: the cluster
then belongs to the `postgres` user (created when missing) and every server command runs through
`runuser -u postgres --`. The bench starts its PostgreSQL with the same code.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fakes.server_thread import free_port

USER = "driftgate"
PASSWORD = "pg-test-secret-7f3a"  # a credential the tests check never shows up anywhere
OWNER = "postgres"  # the system user that runs the server when we are root
# Test speed: no fsync (a crash loses the scratch cluster, which nobody keeps).
FAST = ("-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")


def pg_bin() -> Path | None:
    """The newest /usr/lib/postgresql/N/bin holding initdb (Debian's layout), or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


def available() -> bool:
    """Whether Debian's postgresql is installed (.ci/debian-packages lists it)."""
    return pg_bin() is not None


def _as_owner(argv: Sequence[str]) -> list[str]:
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", OWNER, "--", *argv]


def _ensure_owner() -> None:
    if os.geteuid() != 0:
        return
    try:
        pwd.getpwnam(OWNER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", OWNER], check=True)


def _chown(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", f"{OWNER}:", str(path)], check=True)


def children(parent: int) -> list[int]:
    """The pids whose parent is `parent` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def _run(argv: Sequence[str], what: str) -> None:
    done = subprocess.run(_as_owner(argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@dataclass
class PgServer:
    """One postmaster on 127.0.0.1:port over a copy of the cluster's data directory."""

    bin: Path
    data: Path
    port: int
    options: tuple[str, ...] = FAST
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.data.name}.log"

    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        """postgresql://driftgate:PASSWORD@127.0.0.1:port/database"""
        auth = f"{USER}:{PASSWORD}" if password else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgServer:
        """Start the postmaster and wait until it accepts connections."""
        where = ("-p", str(self.port), "-k", str(self.data.parent))
        opts = " ".join((*where, "-c", "listen_addresses=127.0.0.1", *self.options))
        _run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", opts,
             "-w", "-t", "30", "start"],
            f"pg_ctl start (log: {self.log})",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        """Stop at once (fast shutdown: open connections are cut)."""
        _run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"],
            "pg_ctl stop",
        )

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and every backend: the server hangs instead of refusing.

        Connections stay open and new ones are accepted by the kernel, but nothing answers; `thaw`
        resumes exactly the processes this stopped.
        """
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster, *children(postmaster)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: Sequence[int]) -> None:
        """SIGCONT what `freeze` stopped."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        """Whether the postmaster's pid file is there (pg_ctl status)."""
        done = subprocess.run(
            _as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name (owned by the test user); its URL."""
        _run(
            [str(self.bin / "psql"), "-h", str(self.data.parent), "-p", str(self.port), "-U", USER,
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", f'CREATE DATABASE "{name}"'],
            f"CREATE DATABASE {name}",
        )  # fmt: skip
        return self.url(name)


@dataclass
class PgCluster:
    """An initdb'd data directory kept as a template; each server runs on a copy of it."""

    bin: Path
    root: Path
    template: Path
    servers: list[PgServer] = field(default_factory=list)

    def server(self, options: tuple[str, ...] = FAST) -> PgServer:
        """A new server on a fresh copy of the template, started on a free loopback port."""
        data = self.root / f"data{len(self.servers)}"
        subprocess.run(["cp", "-a", str(self.template), str(data)], check=True)
        for attempt in range(5):  # a free port can be taken between finding and binding it
            server = PgServer(self.bin, data, free_port(), options)
            try:
                server.start()
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.1)
                continue
            self.servers.append(server)
            return server
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop every server started from this cluster and remove the scratch directory."""
        for server in self.servers:
            if server.running:
                server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def init_cluster() -> PgCluster:
    """initdb into a scratch directory (owned by `postgres` when we are root)."""
    found = pg_bin()
    if found is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
    _ensure_owner()
    # Not under pytest's tmp_path: that is private to root, and the server may run as postgres.
    root = Path(tempfile.mkdtemp(prefix="driftgate-pg-"))
    pwfile = root / "pwfile"
    pwfile.write_text(PASSWORD + "\n")
    _chown(root)
    template = root / "template"
    try:
        _run(
            [str(found / "initdb"), "-D", str(template), "-U", USER, f"--pwfile={pwfile}",
             "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync",
             "--locale=C"],
            "initdb",
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    pwfile.unlink()
    return PgCluster(found, root, template)
