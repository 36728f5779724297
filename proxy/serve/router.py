"""The gateway's routes and its start-up and clean-up hooks, for its own HTTP/1.1 server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from driftgate.proxy.serve.protocol import Handler

Hook = Callable[["App"], Awaitable[None]]


class App:
    """Handlers by method and path (exact paths), one for everything else, and lifecycle hooks.

    A GET route answers HEAD too (the server leaves the body out). `app[key]` holds what the
    handlers share (the Gateway).
    """

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Handler]] = {}
        self._fallback: Handler | None = None
        self._state: dict[str, Any] = {}
        self.on_startup: list[Hook] = []
        self.on_shutdown: list[Hook] = []
        self.on_cleanup: list[Hook] = []

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._state[key] = value

    def add(self, method: str, path: str, handler: Handler) -> None:
        """Route `method path` to `handler` (GET also takes HEAD)."""
        by_method = self._routes.setdefault(path, {})
        by_method[method] = handler
        if method == "GET":
            by_method.setdefault("HEAD", handler)

    def fallback(self, handler: Handler) -> None:
        """What answers a method and path no route takes."""
        self._fallback = handler

    def handler_for(self, method: str, path: str) -> Handler:
        """The handler of a request (LookupError when nothing takes it and there is no fallback)."""
        by_method = self._routes.get(path)
        if by_method is not None:
            handler = by_method.get(method)
            if handler is not None:
                return handler
        if self._fallback is None:
            raise LookupError(f"{method} {path}")
        return self._fallback

    async def startup(self) -> None:
        """Run the start-up hooks."""
        for hook in self.on_startup:
            await hook(self)

    async def shutdown(self) -> None:
        """Run the shutdown hooks (before open connections are waited for)."""
        for hook in self.on_shutdown:
            await hook(self)

    async def cleanup(self) -> None:
        """Run the clean-up hooks (after the last request)."""
        for hook in self.on_cleanup:
            await hook(self)
