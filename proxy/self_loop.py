"""Refuse a backend that points back at the gateway itself: each request would call itself forever."""

from __future__ import annotations

from urllib.parse import urlsplit

from driftgate.proxy.auth import is_loopback
from driftgate.proxy.config import BackendConfig, Config
from driftgate.proxy.errors import ConfigError

_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def _own_host(config: Config, host: str) -> bool:
    if host == config.host.lower():
        return True
    # A gateway on loopback or on every interface answers on loopback too.
    listens_on_loopback = is_loopback(config.host) or config.host in _WILDCARDS
    return listens_on_loopback and (is_loopback(host) or host in _WILDCARDS)


def looping_backends(config: Config) -> list[BackendConfig]:
    """The backends whose base URL is the gateway's own listening address."""
    if config.port == 0:  # a free port picked at start-up cannot be in a config
        return []
    out = []
    for backend in config.backends:
        url = urlsplit(backend.base_url)
        try:
            port = url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            continue
        if port == config.port and _own_host(config, (url.hostname or "").lower()):
            out.append(backend)
    return out


def check_self_loop(config: Config) -> None:
    """ConfigError naming each backend that would send the gateway's requests back to itself."""
    loops = looping_backends(config)
    if not loops:
        return
    names = ", ".join(f"{b.name!r} ({b.base_url})" for b in loops)
    raise ConfigError(
        f"backend {names} points at this gateway itself ({config.host}:{config.port}): every "
        "request would be sent back to the gateway. With no config file, the default backends "
        "take their URL from ANTHROPIC_BASE_URL / OPENAI_BASE_URL, which are meant for the "
        "clients you point at the gateway: start it without them (e.g. "
        "`env -u ANTHROPIC_BASE_URL -u OPENAI_BASE_URL driftgate proxy`), or give the backend "
        "its real URL with `driftgate backend add NAME --kind KIND --base-url URL --replace`"
    )
