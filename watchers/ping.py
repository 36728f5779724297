"""The dead-man's switch: every watcher run pings an external URL (healthchecks.io style) at start,
on success, and on failure with its exit status, so a run that never happens is noticed too."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from driftgate.watchers.network_errors import in_words

PING_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
ENV_VAR = "DRIFTGATE_PING_URL"


def ping_url(env: Mapping[str, str], watch_table: Mapping[str, Any]) -> str | None:
    """DRIFTGATE_PING_URL, else `[watch] ping_url`, else None (no pings)."""
    url = env.get(ENV_VAR) or watch_table.get("ping_url")
    return str(url).rstrip("/") if url else None


class Pinger:
    """Pings `<url>/start`, `<url>` and `<url>/fail`; a ping that fails is reported, never raised."""

    def __init__(
        self,
        url: str | None,
        *,
        err: TextIO | None = None,
        post: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.url = url
        self.err = err
        self._post = post or _post

    def _send(self, suffix: str, body: str = "") -> bool:
        if not self.url:
            return False
        try:
            self._post(self.url + suffix, body.encode())
        except Exception as exc:  # a broken switch must never break the watcher it watches
            if self.err is not None:
                # The URL's path is the check's secret: only the host is shown.
                host = urlsplit(self.url).hostname or "?"
                print(
                    f"driftgate: ping to {host} ({suffix or 'success'}) failed "
                    f"({in_words(exc)}); the run goes on",
                    file=self.err,
                    flush=True,
                )
            return False
        return True

    def start(self, what: str) -> bool:
        """The run began."""
        return self._send("/start", f"{what} started\n")

    def finish(self, what: str, exit_status: int) -> bool:
        """The run ended: success on 0, else /fail with the exit status in the body."""
        if exit_status == 0:
            return self._send("", f"{what} succeeded\n")
        return self._send("/fail", f"{what} failed: exit status {exit_status}\n")


def _post(url: str, body: bytes) -> None:
    response = httpx.post(url, content=body, timeout=PING_TIMEOUT)
    response.raise_for_status()
