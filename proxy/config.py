"""The one typed configuration object: file, then environment, then flags (each wins over the last).

Every key the file may hold is declared here (or in a settings dataclass that `Config` names) with
`setting()`; proxy/config_schema.py says how to add one. `[gateway]` keys are the `setting()`
fields of `Config` itself, `[backends.NAME]` keys those of `BackendConfig`.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from driftgate.proxy.config_schema import (
    Source,
    build,
    check_flag,
    did_you_mean,
    keys_of,
    setting,
    table,
    tables_of,
)
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.guard.settings import GuardSettings, StateSettings
from driftgate.proxy.observe.settings import (
    LOG_FORMATS,
    AnalyticsConfig,
    MetricsConfig,
    OtelConfig,
)
from driftgate.proxy.observe.shape_settings import ShapeSettings
from driftgate.proxy.responses.settings import ResponsesSettings
from driftgate.proxy.serve.cores import usable_cores
from driftgate.proxy.serve.event_loop import EVENT_LOOPS

BACKEND_KINDS: tuple[str, ...] = ("anthropic", "openai")
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "warning", "error")
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


_INVISIBLE = {"\n": "a line break", "\r": "a carriage return", " ": "a space", "\t": "a tab"}


def base_url_problem(url: str) -> str | None:
    """Why `url` cannot be a backend's base URL (never repeating a credential it holds), or None."""
    for index, char in enumerate(url):
        if char.isspace() or not char.isprintable():
            name = _INVISIBLE.get(char, f"the character U+{ord(char):04X}")
            # It would go into every request line: the upstream answers 404 or 400.
            return f"holds {name} (character {index + 1} of {len(url)}); remove it"
    if not url.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        has_credentials = parts.username is not None or parts.password is not None
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return "is not a valid URL (check the host and the port)"
    if has_credentials:
        return (
            "holds credentials (user:password@ before the host); driftgate sends a backend's key "
            "as a header: put it in key_env (or key) and write the URL without it"
        )
    if not host:
        return "has no host"
    return None


def base_url_kind_problem(kind: str, url: str) -> str | None:
    """Why `url` is wrong for a backend of `kind` (it loads, but no request could work), or None."""
    if kind == "anthropic" and urlsplit(url).path.rstrip("/").endswith("/v1"):
        return (
            "ends in /v1, but driftgate adds /v1/messages itself for an anthropic backend: "
            "leave /v1 out (e.g. https://api.anthropic.com)"
        )
    return None


def base_url_hint(backend: BackendConfig) -> str | None:
    """A warning for a base URL that may well be a mistake but can be right, or None."""
    if backend.kind == "openai" and urlsplit(backend.base_url).path.strip("/") == "":
        url = backend.base_url.rstrip("/")
        return (
            f"base_url {url} has no path, so requests go to {url}/chat/completions; "
            f"OpenAI-compatible servers (Ollama, vLLM, llama.cpp) serve under /v1: "
            f"did you mean {url}/v1?"
        )
    return None


def header_value_problem(value: str) -> str | None:
    """Why `value` cannot be sent as an HTTP header value (described, never shown), or None."""
    for index, char in enumerate(value):
        if not 0x21 <= ord(char) <= 0x7E:
            name = _INVISIBLE.get(char, f"the character U+{ord(char):04X}")
            return (
                f"holds {name} (character {index + 1} of {len(value)}), which cannot go in an "
                "HTTP header; copy the key again without it"
            )
    return None


def workers_problem(value: Any) -> str | None:
    """Why `value` cannot be a worker count (a number from 1, or "auto"), or None."""
    try:
        worker_count(value)
    except ValueError:
        return 'must be a number of processes (1 or more) or "auto" (one per core)'
    return None


def worker_count(value: Any) -> int:
    """The number of worker processes `value` asks for ("auto": the cores this process may use,
    its CPU affinity capped by its cgroup's CPU quota)."""
    if value == "auto":
        return usable_cores()
    if isinstance(value, bool):
        raise ValueError(value)
    count = int(value)  # a TOML integer, or the text of DRIFTGATE_WORKERS / --workers
    if count < 1 or str(value).strip() != str(count):
        raise ValueError(value)
    return count


def _pem_file_problem(path: Path) -> str | None:
    if not path.is_file():
        return f'"{path}" does not exist or is not a file (the path of a PEM file)'
    return None


def _env_name_problem(name: str) -> str | None:
    if not name or "=" in name or any(c.isspace() for c in name):
        return "must be the name of an environment variable, e.g. OPENAI_API_KEY (not the key)"
    return None


@dataclass(frozen=True)
class BackendConfig:
    """One upstream the gateway can route to: a [backends.NAME] table."""

    name: str
    kind: str = setting(
        doc="the API dialect the backend speaks (every OpenAI-compatible server is openai)",
        choices=BACKEND_KINDS,
    )
    base_url: str = setting(
        doc="where the API lives (for openai include /v1); default: the official API of kind",
        check=base_url_problem,
    )
    key_env: str | None = setting(
        None, "environment variable holding the API key, read at start-up", check=_env_name_problem
    )
    key: str | None = setting(
        None, "the API key itself (prefer key_env)", check=header_value_problem, secret=True
    )
    auth: str = setting(
        "key",
        "key: send the configured key; passthrough (anthropic only): the client's own credentials",
        choices=("key", "passthrough"),
    )
    models: tuple[str, ...] = setting((), "model ids or glob patterns this backend claims")
    timeout: float = setting(600.0, "seconds to wait for an answer", above=0)
    connect_timeout: float = setting(10.0, "seconds to wait for a connection", above=0)
    transport: str = setting(
        "fast", "fast (the gateway's own HTTP/1.1 client) or aiohttp", choices=TRANSPORTS
    )
    ca_bundle: Path | None = setting(
        None, "PEM CA certificates trusted instead of the system's", check=_pem_file_problem
    )
    client_cert: Path | None = setting(
        None, "PEM client certificate (mTLS); may hold the key too", check=_pem_file_problem
    )
    client_key: Path | None = setting(
        None, "PEM private key for client_cert", check=_pem_file_problem
    )
    max_response_bytes: int = setting(
        DEFAULT_MAX_RESPONSE, "largest upstream answer, after decompression", min=1024
    )
    happy_eyeballs_delay: float | None = setting(
        DEFAULT_HAPPY_EYEBALLS_DELAY,
        "seconds before trying the next address (false: one address at a time)",
        above=0,
        max=10,
    )
    max_connections_per_host: int = setting(0, "connections per upstream host (0: no limit)", min=0)
    # Whether the upstream serves OpenAI's Responses API (/responses); None: only OpenAI itself.
    responses: bool | None = setting(
        None, "whether an openai-kind upstream serves /responses itself (default: only OpenAI)"
    )

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
class WatchPackage:
    """One entry of [watch] packages: an npm package the watcher follows."""

    name: str = setting(doc="the npm package name")
    tags: tuple[str, ...] | None = setting(
        None, "dist-tags to follow; the first feeds the template"
    )
    tag: str | None = setting(None, "one dist-tag (same as tags = [tag])")
    template: str | None = setting(None, "the template the package feeds")
    extractor: str | None = setting(None, "the extractor plugin that reads the package")


@dataclass(frozen=True)
class CanaryTable:
    """[watch.canary]: read by `driftgate watch canary`."""

    max_probes: int | None = setting(None, "most probes a run sends", min=1)
    max_usd: float | None = setting(None, "most a run may spend, estimated before sending", above=0)


@dataclass(frozen=True)
class LivenessTable:
    """[watch.liveness]: read by `driftgate watch liveness`."""

    max_age_hours: Mapping[str, float] = setting(
        {}, "hours per watcher before it counts as quiet, e.g. {npm = 3}; 0 turns a check off"
    )
    source: str | None = setting(None, "where last successes are read: actions or daemon")


@dataclass(frozen=True)
class WatchTable:
    """[watch]: read by `driftgate watch npm` (which checks the meaning; here the keys and types)."""

    registry: str | None = setting(None, "npm registry URL")
    repo: str | None = setting(None, "the GitHub repository PRs go to, OWNER/NAME")
    git_remote: str | None = setting(None, "git remote URL (default: the API's clone URL)")
    github_api_url: str | None = setting(None, "GitHub API URL")
    workdir: str | None = setting(None, "where the watcher keeps its clone")
    templates: str | None = setting(None, "templates folder inside the repository")
    on_trivial: str | None = setting(None, "record or pr")
    auto_merge: str | None = setting(None, "off or additive")
    interval_minutes: float | None = setting(None, "minutes between passes", above=0)
    packages: tuple[WatchPackage, ...] = setting((), "the npm packages to watch")
    ping_url: str | None = setting(None, "dead-man's switch URL pinged after each pass")
    canary: CanaryTable | None = setting(None, "live probes of the upstream APIs")
    liveness: LivenessTable | None = setting(None, "when a quiet watcher is reported")


@dataclass(frozen=True)
class DaemonJob:
    """[daemon.jobs.NAME]: when and how `driftgate daemon` runs one watcher."""

    cron: str | None = setting(None, "a crontab line, in UTC (default: the watcher's own)")
    interval_seconds: float | None = setting(None, "run every this many seconds instead", above=0)
    enabled: bool = setting(True, "false: never run this watcher")
    jitter_seconds: float | None = setting(None, "random delay before each run", min=0)
    args: tuple[str, ...] = setting((), "extra arguments for the watcher")
    ping_url: str | None = setting(None, "dead-man's switch URL pinged after each run")


@dataclass(frozen=True)
class DaemonTable:
    """[daemon]: read by `driftgate daemon` (which checks the job names against its catalog)."""

    jitter_seconds: float | None = setting(None, "random delay before each run", min=0)
    misfire_grace_seconds: float | None = setting(None, "how late a run may still start", min=0)
    stop_grace_seconds: float | None = setting(None, "how long SIGTERM lets a run finish", min=0)
    jobs: Mapping[str, DaemonJob] = setting({}, "one table per watcher, [daemon.jobs.NAME]")


@dataclass(frozen=True)
class Config:
    """Everything the gateway and the CLI read, loaded once and passed down.

    The `setting()` fields are the [gateway] table's keys; `table()` fields are other tables.
    """

    home: Path
    path: Path
    host: str = setting(DEFAULT_HOST, "address to bind; beyond loopback DRIFTGATE_API_KEY is required",
                        env="DRIFTGATE_HOST")  # fmt: skip
    port: int = setting(DEFAULT_PORT, "port to listen on (0: any free port)",
                        env="DRIFTGATE_PORT", min=0, max=65535)  # fmt: skip
    max_body_bytes: int = setting(DEFAULT_MAX_BODY, "largest request body accepted (else 413)",
                                  min=1)  # fmt: skip
    default_backend: str | None = setting(None, "the backend for model ids no backend claims")
    cooldown_seconds: float = setting(30.0, "how long a failing backend rests", min=0)
    templates_dir: Path | None = setting(None, "overlay directory of approved templates",
                                         env="DRIFTGATE_TEMPLATES_DIR")  # fmt: skip
    # convert, rather than reject, what a model's template marks unsupported
    convert_unsupported: bool = setting(False, "convert what a model's template marks unsupported")
    forward_other_endpoints: bool = setting(
        True,
        "forward /v1/ requests the gateway does not serve itself (embeddings, files, "
        "batches, Responses retrieval) to a backend as sent; false answers them 404",
    )
    log_level: str = setting("info", "log level", env="DRIFTGATE_LOG_LEVEL", choices=LOG_LEVELS)
    log_format: str = setting(
        "text", "text, or json: one JSON object per line for log shippers", choices=LOG_FORMATS
    )
    # Client connections (see docs/operations.md): seconds, and a count.
    head_timeout: float = setting(
        30.0, "seconds a request head may take after its first byte", above=0
    )
    body_timeout: float = setting(60.0, "seconds the whole body may take after the head", above=0)
    idle_timeout: float = setting(
        60.0, "seconds a keep-alive connection may wait for its next request", above=0
    )
    max_connections: int = setting(4096, "open client connections; beyond it a 503", min=1)
    shutdown_grace: float = setting(30.0, "seconds in-flight requests may finish on SIGTERM", min=0)
    event_loop: str = setting("auto", "auto (uvloop when installed), uvloop or asyncio",
                              choices=EVENT_LOOPS)  # fmt: skip
    workers: Any = setting(1, "worker processes sharing the port: a number, or auto (one per core)",
                           env="DRIFTGATE_WORKERS", check=workers_problem)  # fmt: skip
    api_key: str | None = None  # DRIFTGATE_API_KEY: required from clients when not on loopback
    backends: tuple[BackendConfig, ...] = ()
    fallbacks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    watch: Mapping[str, Any] = table(WatchTable, "read by `driftgate watch npm`", as_mapping=True)
    daemon: Mapping[str, Any] = table(DaemonTable, "read by `driftgate daemon`", as_mapping=True)
    analytics: AnalyticsConfig = table(AnalyticsConfig, "the per-request records and /analytics")
    metrics: MetricsConfig = table(MetricsConfig, "GET /metrics (Prometheus)")
    otel: OtelConfig = table(OtelConfig, "OpenTelemetry spans over OTLP/HTTP")
    shapes: ShapeSettings = table(ShapeSettings, "the shape log (docs/shapes.md)")
    guard: GuardSettings = table(GuardSettings, "spend limits: budgets and what reaching one does")
    state: StateSettings = table(StateSettings, "state shared by several gateways (Redis)")
    responses: ResponsesSettings = table(
        ResponsesSettings, "the Responses conversations driftgate keeps itself (docs/responses.md)"
    )
    proxies: ProxyEnv = field(default_factory=ProxyEnv)  # read from the environment at load

    @property
    def worker_processes(self) -> int:
        """How many worker processes `workers` asks for (checked at load)."""
        return worker_count(self.workers)

    def backend(self, name: str) -> BackendConfig | None:
        """The backend called `name`, if configured."""
        for b in self.backends:
            if b.name == name:
                return b
        return None

    def with_overrides(self, **changes: Any) -> Config:
        """A copy with flag values applied (flags win over file and environment), checked."""
        known = keys_of(Config)
        checked = {
            k: check_flag(Config, k, v) if k in known else v
            for k, v in changes.items()
            if v is not None
        }
        return replace(self, **checked)


# The tables the loader reads itself; every other table is a `table()` field of Config.
BUILTIN_TABLES = ("gateway", "backends", "fallbacks")


def redact_secret(value: str) -> str:
    """Show only enough of a secret to recognise it: its first 4 and last 2 characters."""
    if len(value) <= 8:
        return "****"
    return f"{value[:4]}…{value[-2:]}"


def driftgate_home(env: Mapping[str, str]) -> Path:
    """`DRIFTGATE_HOME`, else `~/.driftgate`."""
    raw = env.get("DRIFTGATE_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".driftgate"


def known_tables() -> tuple[str, ...]:
    """Every top-level table the file may hold."""
    return (*BUILTIN_TABLES, *tables_of(Config))


def _backend(name: str, raw: Any, source: Source) -> BackendConfig:
    where = f"backends.{name}"
    kind = raw.get("kind") if isinstance(raw, Mapping) else None
    given: dict[str, Any] = {"name": name, "base_url": DEFAULT_BASE_URLS.get(str(kind), "")}
    if isinstance(raw, Mapping) and raw.get("happy_eyeballs_delay") is False:
        raw = {k: v for k, v in raw.items() if k != "happy_eyeballs_delay"}
        given["happy_eyeballs_delay"] = None  # false: one address at a time
    backend = build(BackendConfig, raw, where, source, given)
    if backend.client_key is not None and backend.client_cert is None:
        raise source.error(
            where, "client_key", "needs client_cert (the certificate it is the key of)"
        )
    if backend.auth == "passthrough" and backend.kind != "anthropic":
        raise source.error(
            where, "auth", 'passthrough is only for kind = "anthropic" (the client\'s own key)'
        )
    if backend.responses and backend.kind != "openai":
        raise source.error(
            where,
            "responses",
            "true is only for openai-kind backends (an anthropic-kind backend gets "
            "/v1/responses requests translated to /v1/messages)",
        )
    problem = base_url_kind_problem(backend.kind, backend.base_url)
    if problem:
        raise source.error(where, "base_url", problem)
    if backend.auth == "passthrough" and (backend.key or backend.key_env):
        raise source.error(
            where, "auth", "passthrough uses the client's credentials: remove key / key_env"
        )
    return replace(backend, base_url=backend.base_url.rstrip("/"))


def default_backends(env: Mapping[str, str]) -> tuple[BackendConfig, ...]:
    """With no backends in the file: backends from ANTHROPIC_API_KEY / OPENAI_API_KEY."""
    out: list[BackendConfig] = []
    for kind, prefix in (("anthropic", "ANTHROPIC"), ("openai", "OPENAI")):
        if not env.get(f"{prefix}_API_KEY"):
            continue
        url = env.get(f"{prefix}_BASE_URL") or DEFAULT_BASE_URLS[kind]
        problem = base_url_problem(url) or base_url_kind_problem(kind, url)
        if problem:
            raise ConfigError(f"{prefix}_BASE_URL {problem}")
        out.append(
            BackendConfig(
                name=kind, kind=kind, base_url=url.rstrip("/"), key_env=f"{prefix}_API_KEY"
            )
        )
    return tuple(out)


def read_text(path: Path, *, must_exist: bool = False) -> str:
    """The file's text ('' when it does not exist and need not)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist:
            raise ConfigError(
                f"{path}: no such config file; check the --config path, or leave --config out "
                "to use $DRIFTGATE_HOME/config.toml"
            ) from None
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise ConfigError(f"{path}: cannot read the config file: {reason}") from None


def parse_toml(path: Path, text: str) -> dict[str, Any]:
    """The TOML table in `text` (read from `path`, named in errors)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def read_table(path: Path) -> dict[str, Any]:
    """The raw TOML table at `path` ({} when the file does not exist)."""
    return parse_toml(path, read_text(path))


def load_config(
    env: Mapping[str, str] | None = None,
    path: Path | None = None,
    *,
    must_exist: bool | None = None,
) -> Config:
    """Load the config: `path` (`--config`, which must exist), else `$DRIFTGATE_HOME/config.toml`."""
    env = os.environ if env is None else env
    home = driftgate_home(env)
    cfg_path = path or home / "config.toml"
    text = read_text(cfg_path, must_exist=path is not None if must_exist is None else must_exist)
    return config_from_table(parse_toml(cfg_path, text), cfg_path, env, text=text)


def config_from_table(
    tbl: Mapping[str, Any], cfg_path: Path, env: Mapping[str, str], *, text: str = ""
) -> Config:
    """The checked Config for the parsed file `tbl` (and the environment)."""
    home = driftgate_home(env)
    source = Source(cfg_path, text, env)
    tables = tables_of(Config)
    for name, value in tbl.items():
        if name in BUILTIN_TABLES or name in tables:
            continue
        if not isinstance(value, Mapping):
            raise source.error("", name, _stray_key(name))
        raise ConfigError(f"{source.where(name)}: unknown table" + _table_hint(name))
    gateway = build(
        Config, tbl.get("gateway", {}), "gateway", source, {"home": home, "path": cfg_path}
    )
    backends_tbl = tbl.get("backends", {})
    if not isinstance(backends_tbl, Mapping):
        raise source.error("", "backends", "must be tables, e.g. [backends.NAME]")
    backends = tuple(_backend(n, t, source) for n, t in backends_tbl.items()) or default_backends(
        env
    )
    fallbacks = _fallbacks(tbl.get("fallbacks", {}), source)
    if gateway.default_backend and not any(b.name == gateway.default_backend for b in backends):
        names = [b.name for b in backends]
        raise source.error(
            "gateway",
            "default_backend",
            f'"{gateway.default_backend}" is not a configured backend'
            + (did_you_mean(gateway.default_backend, names) if names else " (none configured)"),
        )
    extra: dict[str, Any] = {}
    for name, spec in tables.items():
        raw = tbl.get(name, {})
        built = build(spec.cls, raw, name, source)
        extra[name] = dict(raw) if spec.as_mapping else built
    return replace(
        gateway,
        api_key=env.get("DRIFTGATE_API_KEY") or None,
        backends=backends,
        fallbacks=fallbacks,
        proxies=ProxyEnv.from_env(env),
        **extra,
    )


def _table_hint(name: str) -> str:
    close = difflib.get_close_matches(name, known_tables(), n=1, cutoff=0.6)
    if close:
        return f"; did you mean `[{close[0]}]`?"
    return " (known tables: " + ", ".join(f"[{t}]" for t in known_tables()) + ")"


def _stray_key(name: str) -> str:
    owners = [
        t
        for t, cls in (("gateway", Config), ("backends.NAME", BackendConfig))
        if name in keys_of(cls)
    ]
    owners += [t for t, spec in tables_of(Config).items() if name in keys_of(spec.cls)]
    if owners:
        return f"a key outside any table; it belongs in [{owners[0]}]"
    return "a key outside any table; known tables: " + ", ".join(f"[{t}]" for t in known_tables())


def _fallbacks(raw: Any, source: Source) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, Mapping):
        raise source.error("", "fallbacks", _FALLBACKS_HINT)
    out: dict[str, tuple[str, ...]] = {}
    for model, chain in raw.items():
        if not isinstance(chain, list) or not chain or not all(isinstance(x, str) for x in chain):
            raise source.error("fallbacks", model, _FALLBACKS_HINT)
        out[str(model)] = tuple(chain)
    return out


_FALLBACKS_HINT = '[fallbacks] maps a model to a list, e.g. opus = ["openai:gpt-5.4"]'


def check_backend_entry(name: str, entry: Mapping[str, Any]) -> BackendConfig:
    """Refuse a [backends.NAME] table the loader would refuse (for `driftgate backend add`)."""
    return _backend(name, entry, Source(Path(f"[backends.{name}]")))


def check_key(backend: BackendConfig, key: str) -> None:
    """Refuse a resolved key that cannot be sent as a header, naming where it came from."""
    problem = header_value_problem(key)
    if problem:
        origin = f"${backend.key_env}" if backend.key_env and not backend.key else "key"
        raise ConfigError(f"backend {backend.name!r}: the API key in {origin} {problem}")


def settings_doc() -> list[tuple[str, str, str, str]]:
    """(table, key, type, meaning) for every declared key, for the docs."""
    from driftgate.proxy.config_schema import describe

    rows: list[tuple[str, str, str, str]] = []
    groups: list[tuple[str, type[Any]]] = [("gateway", Config), ("backends.NAME", BackendConfig)]
    groups += [(name, spec.cls) for name, spec in tables_of(Config).items()]
    for tname, cls in groups:
        for key in keys_of(cls).values():
            rows.append((tname, key.name, describe(key.hint), key.setting.doc))
    return rows


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
