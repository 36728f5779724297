"""The one typed configuration object: file, then environment, then flags."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import tomli_w

from driftgate.proxy.errors import ConfigError

BackendKind = Literal["anthropic", "openai"]
BACKEND_KINDS: tuple[str, ...] = ("anthropic", "openai")
DEFAULT_PORT = 3456
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_BODY = 32 * 1024 * 1024
DEFAULT_MAX_RESPONSE = 64 * 1024 * 1024
DEFAULT_HAPPY_EYEBALLS_DELAY = 0.25  # seconds before trying the next address (RFC 8305)
TRANSPORTS: tuple[str, ...] = ("fast", "aiohttp")
DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "openai": "https://api.openai.com/v1",
}


@dataclass(frozen=True)
class BackendConfig:
    """One upstream the gateway can route to."""

    name: str
    kind: str
    base_url: str
    key_env: str | None = None
    key: str | None = None
    auth: str = "key"  # "key" or "passthrough" (anthropic kind: the client's own credentials)
    models: tuple[str, ...] = ()  # ids or glob patterns this backend claims
    timeout: float = 600.0
    connect_timeout: float = 10.0
    transport: str = "fast"  # "fast" (the gateway's own HTTP/1.1 client) or "aiohttp"
    ca_bundle: Path | None = None  # PEM CA certificates trusted instead of the system's
    client_cert: Path | None = None  # PEM client certificate (mTLS); may hold the key too
    client_key: Path | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE  # after decompression
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY  # None: one address at a time
    max_connections_per_host: int = 0  # 0: no limit
    # Whether the upstream serves OpenAI's Responses API (/responses); None: only OpenAI itself.
    responses: bool | None = None

    @property
    def serves_responses(self) -> bool:
        """Whether /v1/responses requests go to this backend as they are (else translated)."""
        if self.kind != "openai":
            return False
        if self.responses is not None:
            return self.responses
        return self.base_url == DEFAULT_BASE_URLS["openai"]

    def resolve_key(self, env: Mapping[str, str]) -> str | None:
        """The API key: an inline key wins over the named environment variable."""
        if self.key:
            return self.key
        if self.key_env:
            return env.get(self.key_env) or None
        return None

    def redacted(self) -> dict[str, Any]:
        """A printable view with the key hidden."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "base_url": self.base_url}
        if self.auth != "key":
            out["auth"] = self.auth
        if self.key_env:
            out["key_env"] = self.key_env
        if self.key:
            out["key"] = redact_secret(self.key)
        if self.models:
            out["models"] = list(self.models)
        if self.responses is not None:
            out["responses"] = self.responses
        return out


@dataclass(frozen=True)
class ProxyEnv:
    """The proxy environment variables, captured once at load (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)."""

    http: str | None = None
    https: str | None = None
    no_proxy: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyEnv:
        """Lower-case names win over upper-case, as curl reads them."""

        def get(name: str) -> str | None:
            return env.get(name.lower()) or env.get(name.upper()) or None

        return cls(get("http_proxy"), get("https_proxy"), get("no_proxy"))


@dataclass(frozen=True)
class Config:
    """Everything the gateway and the CLI read, loaded once and passed down."""

    home: Path
    path: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None  # DRIFTGATE_API_KEY: required from clients when not on loopback
    max_body_bytes: int = DEFAULT_MAX_BODY
    backends: tuple[BackendConfig, ...] = ()
    default_backend: str | None = None
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    cooldown_seconds: float = 30.0
    templates_dir: Path | None = None
    convert_unsupported: bool = (
        False  # convert, rather than reject, what a model's template marks unsupported
    )
    log_level: str = "info"
    # Client connections (see docs/operations.md): seconds, and a count.
    head_timeout: float = 30.0  # a request head must be complete this long after its first byte
    body_timeout: float = 60.0  # the whole body must arrive this long after the head
    idle_timeout: float = 60.0  # a keep-alive connection with no request is closed after this
    max_connections: int = 4096  # open client connections; beyond it new ones get a 503
    shutdown_grace: float = 30.0  # on SIGTERM, in-flight requests may finish for this long
    shape_log: Path | None = None
    watch: Mapping[str, Any] = field(default_factory=dict)  # the [watch] table, read by watchers
    daemon: Mapping[str, Any] = field(default_factory=dict)  # the [daemon] table (driftgate daemon)
    proxies: ProxyEnv = field(default_factory=ProxyEnv)  # read from the environment at load

    def backend(self, name: str) -> BackendConfig | None:
        """The backend called `name`, if configured."""
        for b in self.backends:
            if b.name == name:
                return b
        return None

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with flag values applied (flags win over file and environment)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def redact_secret(value: str) -> str:
    """Show only enough of a secret to recognise it: its first 4 and last 2 characters."""
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}…{value[-2:]}"


def driftgate_home(env: Mapping[str, str]) -> Path:
    """`DRIFTGATE_HOME`, else `~/.driftgate`."""
    raw = env.get("DRIFTGATE_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".driftgate"


def _number(convert: type[int] | type[float], value: Any, what: str) -> Any:
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number, got {value!r}") from None


def _positive(
    convert: type[int] | type[float],
    table: Mapping[str, Any],
    key: str,
    default: Any,
    *,
    zero: bool = False,
) -> Any:
    value = _number(convert, table.get(key, default), key)
    if value < 0 or (value == 0 and not zero):
        least = "0 or more" if zero else "greater than 0"
        raise ConfigError(f"[gateway] {key} must be {least}, got {value}")
    return value


def _backend_from_table(name: str, table: Mapping[str, Any]) -> BackendConfig:
    if not isinstance(table, Mapping):
        raise ConfigError(f"backend {name!r}: must be a table ([backends.{name}])")
    kind = table.get("kind")
    if kind not in BACKEND_KINDS:
        raise ConfigError(
            f"backend {name!r}: kind must be one of {', '.join(BACKEND_KINDS)}, got {kind!r}"
        )
    base_url = str(table.get("base_url") or DEFAULT_BASE_URLS[kind]).rstrip("/")
    auth = str(table.get("auth", "key"))
    if auth not in ("key", "passthrough"):
        raise ConfigError(f"backend {name!r}: auth must be 'key' or 'passthrough', got {auth!r}")
    if auth == "passthrough" and kind != "anthropic":
        raise ConfigError(
            f"backend {name!r}: auth = 'passthrough' is only for anthropic-kind backends"
        )
    models = table.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"backend {name!r}: models must be a list of strings")
    responses = table.get("responses")
    if responses is not None and not isinstance(responses, bool):
        raise ConfigError(f"backend {name!r}: responses must be true or false, got {responses!r}")
    if responses and kind != "openai":
        raise ConfigError(
            f"backend {name!r}: responses = true is only for openai-kind backends (an "
            "anthropic-kind backend gets /v1/responses requests translated to /v1/messages)"
        )
    transport = table.get("transport", "fast")
    if transport not in TRANSPORTS:
        raise ConfigError(
            f"backend {name!r}: transport must be one of {', '.join(map(repr, TRANSPORTS))}, "
            f"got {transport!r}"
        )
    return BackendConfig(
        name=name,
        kind=kind,
        base_url=base_url,
        responses=responses,
        key_env=table.get("key_env"),
        key=table.get("key"),
        auth=auth,
        models=tuple(models),
        timeout=_number(float, table.get("timeout", 600.0), f"backend {name!r}: timeout"),
        connect_timeout=_number(
            float, table.get("connect_timeout", 10.0), f"backend {name!r}: connect_timeout"
        ),
        transport=transport,
        **_transport_keys(name, table),
    )


def _pem_file(name: str, table: Mapping[str, Any], key: str) -> Path | None:
    raw = table.get(key)
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"backend {name!r}: {key} must be the path of a PEM file")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise ConfigError(f"backend {name!r}: {key} {str(path)!r} does not exist or is not a file")
    return path


def _transport_keys(name: str, table: Mapping[str, Any]) -> dict[str, Any]:
    """The TLS files and connection limits of one backend, checked."""
    out: dict[str, Any] = {
        k: _pem_file(name, table, k) for k in ("ca_bundle", "client_cert", "client_key")
    }
    if out["client_key"] is not None and out["client_cert"] is None:
        raise ConfigError(
            f"backend {name!r}: client_key needs client_cert (the certificate it signs for)"
        )
    limit = _number(
        int,
        table.get("max_response_bytes", DEFAULT_MAX_RESPONSE),
        f"backend {name!r}: max_response_bytes",
    )
    if limit < 1024:
        raise ConfigError(
            f"backend {name!r}: max_response_bytes must be at least 1024, got {limit}"
        )
    out["max_response_bytes"] = limit
    delay = table.get("happy_eyeballs_delay", DEFAULT_HAPPY_EYEBALLS_DELAY)
    if delay is not False:
        delay = _number(float, delay, f"backend {name!r}: happy_eyeballs_delay")
        if not 0 < delay <= 10:
            raise ConfigError(
                f"backend {name!r}: happy_eyeballs_delay is seconds between 0 and 10 "
                f"(or false to try one address at a time), got {delay}"
            )
    out["happy_eyeballs_delay"] = None if delay is False else delay
    per_host = _number(
        int, table.get("max_connections_per_host", 0), f"backend {name!r}: max_connections_per_host"
    )
    if per_host < 0:
        raise ConfigError(
            f"backend {name!r}: max_connections_per_host must be 0 (no limit) or more"
        )
    out["max_connections_per_host"] = per_host
    return out


def default_backends(env: Mapping[str, str]) -> tuple[BackendConfig, ...]:
    """With no config file: backends from ANTHROPIC_API_KEY / OPENAI_API_KEY."""
    out: list[BackendConfig] = []
    if env.get("ANTHROPIC_API_KEY"):
        out.append(
            BackendConfig(
                name="anthropic",
                kind="anthropic",
                base_url=(env.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URLS["anthropic"]).rstrip(
                    "/"
                ),
                key_env="ANTHROPIC_API_KEY",
            )
        )
    if env.get("OPENAI_API_KEY"):
        out.append(
            BackendConfig(
                name="openai",
                kind="openai",
                base_url=(env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URLS["openai"]).rstrip("/"),
                key_env="OPENAI_API_KEY",
            )
        )
    return tuple(out)


def read_table(path: Path) -> dict[str, Any]:
    """The raw TOML table at `path` ({} when the file does not exist)."""
    if not path.exists():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_config(env: Mapping[str, str] | None = None, path: Path | None = None) -> Config:
    """Load the config: `path` (or `--config`), else `$DRIFTGATE_HOME/config.toml`; env fills gaps."""
    env = os.environ if env is None else env
    home = driftgate_home(env)
    cfg_path = path or home / "config.toml"
    table = read_table(cfg_path)
    gw = table.get("gateway", {})
    if not isinstance(gw, dict):
        raise ConfigError(f"{cfg_path}: [gateway] must be a table")
    backends_tbl = table.get("backends", {})
    if not isinstance(backends_tbl, dict):
        raise ConfigError(f"{cfg_path}: [backends] must be a table of tables")
    backends = tuple(_backend_from_table(n, t) for n, t in backends_tbl.items())
    backends = backends or default_backends(env)
    fallbacks_raw = table.get("fallbacks", {})
    if not isinstance(fallbacks_raw, dict) or not all(
        isinstance(v, list) and all(isinstance(x, str) for x in v) for v in fallbacks_raw.values()
    ):
        raise ConfigError(
            f'{cfg_path}: [fallbacks] maps a model to a list, e.g. opus = ["openai:gpt-5.4"]'
        )
    fallbacks = {str(k): tuple(v) for k, v in fallbacks_raw.items()}
    # Environment beats file, as for DRIFTGATE_PORT.
    templates_dir = env.get("DRIFTGATE_TEMPLATES_DIR") or gw.get("templates_dir")
    shape_log = gw.get("shape_log")
    default_backend = gw.get("default_backend")
    if default_backend and not any(b.name == default_backend for b in backends):
        raise ConfigError(
            f"{cfg_path}: default_backend {default_backend!r} is not a configured backend"
        )
    return Config(
        home=home,
        path=cfg_path,
        host=str(gw.get("host", DEFAULT_HOST)),
        port=_number(int, env.get("DRIFTGATE_PORT") or gw.get("port", DEFAULT_PORT), "port"),
        api_key=env.get("DRIFTGATE_API_KEY") or None,
        max_body_bytes=_number(int, gw.get("max_body_bytes", DEFAULT_MAX_BODY), "max_body_bytes"),
        backends=backends,
        default_backend=default_backend,
        fallbacks=fallbacks,
        cooldown_seconds=_number(float, gw.get("cooldown_seconds", 30.0), "cooldown_seconds"),
        templates_dir=Path(templates_dir).expanduser() if templates_dir else None,
        convert_unsupported=bool(gw.get("convert_unsupported", False)),
        log_level=str(gw.get("log_level", "info")),
        head_timeout=_positive(float, gw, "head_timeout", 30.0),
        body_timeout=_positive(float, gw, "body_timeout", 60.0),
        idle_timeout=_positive(float, gw, "idle_timeout", 60.0),
        max_connections=_positive(int, gw, "max_connections", 4096),
        shutdown_grace=_positive(float, gw, "shutdown_grace", 30.0, zero=True),
        shape_log=Path(shape_log).expanduser() if shape_log else None,
        watch=table.get("watch", {}),
        daemon=table.get("daemon", {}),
        proxies=ProxyEnv.from_env(env),
    )


def write_table(path: Path, table: Mapping[str, Any]) -> None:
    """Write the TOML table atomically; 0600 when it holds a key (it always may)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    data = tomli_w.dumps(dict(table)).encode()
    holds_key = any(
        isinstance(t, dict) and t.get("key") for t in table.get("backends", {}).values()
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if holds_key else 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    if holds_key:
        os.chmod(tmp, 0o600)
    os.replace(tmp, path)
