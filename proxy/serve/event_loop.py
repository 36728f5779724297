"""The event loop the gateway runs on: uvloop (libuv, as uvicorn uses by default) when installed,
else asyncio's own; `[gateway] event_loop` picks one."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from driftgate.proxy.errors import ConfigError

EVENT_LOOPS: tuple[str, ...] = ("auto", "uvloop", "asyncio")
LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(choice: str) -> LoopFactory:
    """What makes the gateway's loop for `choice` (auto: uvloop when it can be imported)."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise ConfigError(
                    '[gateway] event_loop = "uvloop", but uvloop is not installed: '
                    'pip install uvloop, or set event_loop = "asyncio"'
                ) from None
        else:
            factory: LoopFactory = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """ "uvloop" or "asyncio": which loop `loop` is (for /health)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
