"""SIGTERM / SIGINT as a note the main thread waits for, taking no lock in the handler.

A Python signal handler runs in the main thread between two bytecodes, wherever that thread is:
one that calls `threading.Event.set()` takes the Event's lock, which the main thread may hold at
that moment (inside `Event.wait`): a deadlock. Here the handler only appends to a list; the
wait is a `select` on a self-pipe that `signal.set_wakeup_fd` writes to from C, so a signal
that the kernel hands to any thread (an APScheduler worker, say) still wakes the main thread.
"""

from __future__ import annotations

import os
import select
import signal
import time
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
POLL_SECONDS = 1.0  # belt and braces: the wakeup fd makes the wait return at once


class StopSignals:
    """Install with `with`: handlers that note the signal; `wait()` returns the first one."""

    def __init__(self, signals: tuple[signal.Signals, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.received: list[int] = []
        self._read = self._write = -1
        self._previous: dict[signal.Signals, object] = {}
        self._previous_fd = -1

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)  # list.append takes no lock a waiter could hold

    def __enter__(self) -> StopSignals:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._previous = {s: signal.signal(s, self._note) for s in self.signals}
        self._previous_fd = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        signal.set_wakeup_fd(self._previous_fd)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        os.close(self._read)
        os.close(self._write)

    def wait(self, timeout: float | None = None) -> int | None:
        """The first stop signal received, waiting up to `timeout` seconds (None: for ever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.received:
            step = POLL_SECONDS
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return None
            readable, _, _ = select.select([self._read], [], [], step)
            if readable:
                try:
                    while os.read(self._read, 512):
                        pass
                except BlockingIOError:
                    pass
        return self.received[0]
