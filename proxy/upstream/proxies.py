"""Which requests go through a forward proxy (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), and how.

The environment is read once, at config load (config.ProxyEnv); this module only parses it.
Proxy credentials live in `Proxy.authorization` and are never part of a message or a repr.
"""

from __future__ import annotations

import base64
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from driftgate.proxy.config import ProxyEnv
from driftgate.proxy.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Proxy:
    """A forward proxy reached over plain HTTP (CONNECT for https targets, absolute-form for http)."""

    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def authorization(self) -> str | None:
        """The Proxy-Authorization header value, when the proxy URL carries credentials."""
        if self.username is None:
            return None
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    @property
    def shown(self) -> str:
        """host:port, for messages (never the credentials)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The proxy URL without credentials."""
        return f"http://{self.shown}"


def parse_proxy(name: str, value: str) -> Proxy:
    """A proxy from its URL (scheme http, or none); ConfigError naming the variable otherwise."""
    raw = value.strip()
    if "://" not in raw:
        raw = "http://" + raw  # curl's reading of a bare host:port
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        raise ConfigError(f"{name} is not a proxy URL (expected http://host:port)") from None
    if parts.scheme.lower() != "http" or not parts.hostname:
        raise ConfigError(
            f"{name} must be an http:// proxy URL such as http://proxy.example:3128 "
            f"(got scheme {parts.scheme!r}); TLS to the proxy itself is not supported"
        )
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return Proxy(parts.hostname, port or 80, user, password)


class NoProxy:
    """NO_PROXY: `*`, host names (a suffix match: `example.com` covers `api.example.com`),
    `.example.com`, IP addresses and CIDR ranges, each optionally with `:port`."""

    def __init__(self, value: str | None) -> None:
        self.everything = False
        self._names: list[tuple[str, int | None]] = []
        self._networks: list[tuple[Network, int | None]] = []
        for entry in (value or "").replace(",", " ").split():
            self._add(entry.strip().lower())

    def _add(self, entry: str) -> None:
        if entry == "*":
            self.everything = True
            return
        host, port = entry, None
        if entry.startswith("["):  # [::1]:8080
            host, _, rest = entry[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
        elif entry.count(":") == 1:
            name, _, tail = entry.partition(":")
            if tail.isdigit():
                host, port = name, int(tail)
        try:
            self._networks.append((ipaddress.ip_network(host, strict=False), port))
            return
        except ValueError:
            pass
        name = host.lstrip("*").lstrip(".")
        if name:
            self._names.append((name, port))

    def bypass(self, host: str, port: int) -> bool:
        """Whether a request to host:port goes direct."""
        if self.everything:
            return True
        host = host.lower().rstrip(".")
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None:
            return any(ip in net and p in (None, port) for net, p in self._networks)
        return any(
            (host == name or host.endswith("." + name)) and p in (None, port)
            for name, p in self._names
        )


class ProxyChooser:
    """The proxy (or none) for each target, from the proxy environment captured at load."""

    def __init__(self, env: ProxyEnv) -> None:
        self._http = parse_proxy("HTTP_PROXY", env.http) if env.http else None
        self._https = parse_proxy("HTTPS_PROXY", env.https) if env.https else None
        self._no = NoProxy(env.no_proxy)

    @property
    def active(self) -> bool:
        """Some scheme has a proxy."""
        return self._http is not None or self._https is not None

    def choose(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a request to scheme://host:port, or None to go direct."""
        proxy = self._https if scheme == "https" else self._http
        if proxy is None or self._no.bypass(host, port):
            return None
        return proxy
