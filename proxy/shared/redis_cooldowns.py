"""Backend cooldowns shared by every gateway on one Redis ([state] redis_url).

A backend that fails on one gateway cools on all: the gateway SETs `PREFIX cool:NAME` with PX
(a longer cooldown already there is kept) and PUBLISHes it, in one script call, off the request
path. Every gateway keeps its own copy of the deadlines (`Cooldowns`), which the request path
reads with no round trip; a subscription to `PREFIX cooldowns` updates it, and each (re)subscribe
reads the keys of the configured backends first, so a message missed while the connection was
down is not a cooldown missed. Redis unreachable: cooldowns stay per gateway until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.guard.settings import StateSettings, redact_url
from driftgate.proxy.upstream.failure_words import in_words

log = logging.getLogger("driftgate.cooldowns")
FAILURES = (RedisError, OSError, asyncio.TimeoutError)
# uvloop raises RuntimeError ("the handler is closed"), not OSError, when a write meets a
# connection the server already closed (the subscription's health-check PING after a restart),
# and redis-py passes it on: the listener treats it as Redis gone, never as its own end.
LISTEN_FAILURES = (*FAILURES, RuntimeError)
LISTEN_WAKE = 1.0  # seconds a read of the subscription waits before the loop looks again
HEALTH_CHECK = 5  # seconds: an idle subscription PINGs, so a dead connection is noticed

# KEYS: the backend's key. ARGV: milliseconds (0: clear), channel, backend, origin.
# A cooldown is only lengthened; the message says the time left, so clocks need not agree.
SHARE = r"""
local ms = tonumber(ARGV[1])
if ms <= 0 then
  if redis.call('DEL', KEYS[1]) == 1 then
    redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\t0\t' .. ARGV[4])
  end
  return 0
end
if redis.call('PTTL', KEYS[1]) >= ms then return 0 end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ms)
redis.call('PUBLISH', ARGV[2], ARGV[3] .. '\t' .. ms .. '\t' .. ARGV[4])
return 1
"""

# KEYS: one key per backend -> the milliseconds each still cools (<= 0: not cooling).
LEFT = r"""
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('PTTL', key) end
return out
"""


class RedisCooldowns:
    """A cooldown board in Redis: this gateway's cooldowns out, the others' in."""

    kind = "redis"

    def __init__(
        self,
        settings: StateSettings,
        cooldowns: Cooldowns,
        backends: Callable[[], Iterable[str]],
        listener: Redis | None = None,
    ) -> None:
        """`listener`: the client the subscription uses (default: one made from the URL)."""
        assert settings.redis_url is not None
        self.url = redact_url(settings.redis_url)
        self._cooldowns = cooldowns
        self._backends = backends  # the configured backends' names (a reload may change them)
        self._retry = settings.retry_seconds
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # our own messages are skipped
        self._key = f"{settings.key_prefix}cool:"
        self.channel = f"{settings.key_prefix}cooldowns"
        self.redis: Redis = Redis.from_url(
            settings.redis_url,
            socket_timeout=settings.timeout_seconds,
            socket_connect_timeout=settings.timeout_seconds,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        # The subscription waits for messages as long as there are none: no socket timeout.
        self._listener: Redis = listener or Redis.from_url(
            settings.redis_url,
            socket_connect_timeout=settings.timeout_seconds,
            health_check_interval=HEALTH_CHECK,
            retry=Retry(NoBackoff(), 0),
        )
        self._share = self.redis.register_script(SHARE)
        self._left = self.redis.register_script(LEFT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._listen: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()  # set while the subscription is live (tests wait on it)
        self.up = True
        self.error: str | None = None
        cooldowns.board = self

    def shared(self, backend: str, seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self._send(backend, seconds))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, backend: str, seconds: float) -> None:
        ms = max(1, round(seconds * 1000)) if seconds > 0 else 0
        try:
            await self._share(
                keys=[self._key + backend], args=[ms, self.channel, backend, self._origin]
            )
        except FAILURES as exc:
            self._failed(exc, f"backend {backend!r}'s cooldown is not shared")

    async def start(self) -> None:
        """Subscribe (in the background: a Redis that is down delays nothing)."""
        self._listen = asyncio.get_running_loop().create_task(self._listening())

    async def _listening(self) -> None:
        while True:
            pubsub = self._listener.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=LISTEN_WAKE)
                    if message is not None:
                        await self._heard(message)
            except LISTEN_FAILURES as exc:
                self.subscribed.clear()
                self._failed(exc, "cooldowns stay this gateway's own until it is back")
            finally:
                with contextlib.suppress(*LISTEN_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self._retry)

    async def _heard(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":  # a new subscription: what did it miss?
            await self._catch_up()
            self.subscribed.set()
            if not self.up:
                self.up, self.error = True, None
                log.warning("cooldowns: Redis at %s answers again", self.url)
            return
        if message["type"] != "message":
            return
        try:
            backend, ms, origin = message["data"].decode().split("\t", 2)
            seconds = int(ms) / 1000
        except (AttributeError, UnicodeDecodeError, ValueError):
            return  # not one of ours: someone else publishes on the channel
        if origin != self._origin:
            self._cooldowns.heard(backend, seconds)

    async def _catch_up(self) -> None:
        names = list(self._backends())
        if not names:
            return
        left = await self._left(keys=[self._key + name for name in names], args=[])
        for name, ms in zip(names, left, strict=True):
            if int(ms) > 0:
                self._cooldowns.heard(name, int(ms) / 1000)

    def _failed(self, exc: BaseException, what: str) -> None:
        self.error = in_words(exc)[:300]
        if self.up:
            self.up = False
            log.warning(
                "cooldowns: Redis at %s is unreachable (%s): %s", self.url, self.error, what
            )

    def health(self) -> dict[str, Any]:
        """For /health: where cooldowns are shared, and whether that works now."""
        doc: dict[str, Any] = {"shared": "redis", "url": self.url, "reachable": self.up}
        if not self.up:
            doc["error"] = self.error
        return doc

    async def close(self) -> None:
        """Stop listening, finish the writes on their way, close the connections."""
        if self._listen is not None:
            self._listen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for client in (self.redis, self._listener):  # best effort: Redis may be gone already
            with contextlib.suppress(*LISTEN_FAILURES):
                await client.aclose()
