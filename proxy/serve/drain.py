"""In-flight requests, so a shutdown can let them finish for a grace period and then end what is
left in the gateway's own name (503, the dialect's error event), not the client's (499)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from driftgate.proxy.errors import Overloaded

log = logging.getLogger("driftgate.server")
SETTLE_SECONDS = 5.0  # after the grace: time for cut requests to write their error and be recorded
SHUTDOWN_STATUS = 503
SHUTDOWN_REASON = "gateway shutting down"


def shutting_down() -> Overloaded:
    """The error a request cut by the shutdown gets, in its dialect (overloaded: retry elsewhere)."""
    return Overloaded("the gateway is shutting down and ended this request; retry it")


class Drain:
    """The handler tasks in flight; after `expired` their cancellation is the gateway's doing."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()
        self._empty: asyncio.Event | None = None
        self.expired = False  # the grace ran out: a cancelled request was cut by the shutdown
        self._hurry = False  # asked to cut now (a second SIGTERM / Ctrl-C)

    @property
    def in_flight(self) -> int:
        """How many requests are being handled."""
        return len(self._tasks)

    def tasks(self) -> list[asyncio.Task[object]]:
        """The handler tasks in flight now."""
        return list(self._tasks)

    def enter(self, task: asyncio.Task[Any] | None = None) -> asyncio.Task[object] | None:
        """Count the handler task in (returned, to hand to `leave`): `task`, the one the server
        runs the request in, or else the current one."""
        if task is None:
            task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        return task

    def leave(self, task: asyncio.Task[object] | None) -> None:
        """Count it out; the last one out wakes a waiting shutdown."""
        if task is not None:
            self._tasks.discard(task)
        if self._empty is not None and not self._tasks:
            self._empty.set()

    def cut_now(self) -> None:
        """End the grace at once (a second signal): what is in flight is cut now."""
        self._hurry = True
        if self._empty is not None:
            self._empty.set()

    async def wait(self, grace: float) -> int:
        """Let in-flight requests finish for up to `grace` seconds; cut the rest; how many were cut."""
        if self._tasks and not self._hurry:
            self._empty = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), grace)
        left = list(self._tasks)
        if not left:
            return 0
        self.expired = True
        log.warning(
            "shutdown grace (%gs) %s: ending %d request(s) still in flight with a 503",
            grace,
            "cut short" if self._hurry else "over",
            len(left),
        )
        for task in left:
            task.cancel()
        await asyncio.wait(left, timeout=SETTLE_SECONDS)
        return len(left)


def uncancel_for_shutdown(drain: Drain) -> bool:
    """Inside a cancelled handler: True (and the cancellation withdrawn) when the shutdown did it."""
    if not drain.expired:
        return False
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()
    return True
