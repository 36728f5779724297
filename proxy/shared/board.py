"""Which cooldown board a gateway uses: Redis ([state] redis_url), the workers' run directory
(`--workers N`), or none (one process: its cooldowns are already everyone's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from driftgate.proxy.cooldown import CooldownBoard, Cooldowns
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.shared.file_cooldowns import FileCooldowns, cooldowns_dir

if TYPE_CHECKING:
    from driftgate.proxy.config import Config


class SharedCooldowns(CooldownBoard, Protocol):
    """A board with a life: started on the app's loop, closed after the last request."""

    kind: str

    async def start(self) -> None:
        """Begin taking in the other gateways' cooldowns."""
        ...

    def health(self) -> dict[str, Any]:
        """Where the cooldowns are shared, for /health."""
        ...

    async def close(self) -> None:
        """Stop taking them in; release connections."""
        ...


def open_cooldown_board(
    config: Config, cooldowns: Cooldowns, backends: Callable[[], Iterable[str]]
) -> SharedCooldowns | None:
    """The board for `config`, attached to `cooldowns` (None: nothing to share with)."""
    if config.state.redis_url is not None:
        try:  # imported here only, so that without redis_url nothing of redis loads
            from driftgate.proxy.shared.redis_cooldowns import RedisCooldowns
        except ImportError as exc:
            raise ConfigError(
                f"[state] redis_url is set but the Redis client is not installed ({exc.name}): "
                "pip install 'driftgate[redis]', or remove [state] redis_url"
            ) from None
        return RedisCooldowns(config.state, cooldowns, backends)
    if config.worker_processes > 1:
        return FileCooldowns(cooldowns_dir(config.home), cooldowns)
    return None
