"""A TCP server on loopback that accepts every connection and never answers: a hung database.

Unlike a closed port (refused at once), a client connecting here gets its TCP handshake and then
waits: for the startup reply, for a query's result. It is what a frozen host or a silently
dropping network path looks like from the client's side. Connections are held open (and what
they send is read and discarded, so a client's writes never block on a full buffer) until stop.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class SilentServer:
    """`with SilentServer() as s:` listens on 127.0.0.1:s.port; `s.accepted` counts connections."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)

    def url(self, database: str = "x") -> str:
        """A postgresql:// URL pointing here."""
        return f"postgresql://u:pw@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Close the listener and every held connection."""
        self._stopping.set()
        self._listener.close()
        self._thread.join(5)
        for conn in self._held:
            conn.close()

    def _serve(self) -> None:
        self._listener.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                self._drain()
                continue
            except OSError:
                return  # closed by stop()
            conn.setblocking(False)
            self._held.append(conn)
            self.accepted += 1

    def _drain(self) -> None:
        for conn in self._held:
            try:
                while conn.recv(65536):
                    pass
            except (BlockingIOError, OSError):
                continue
