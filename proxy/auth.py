"""Who may call the gateway, and which credentials go upstream with each request."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from driftgate.proxy.client_headers import PASSTHROUGH_NAMES, forwardable, rule_for
from driftgate.proxy.config import BackendConfig, Config, check_key
from driftgate.proxy.errors import ConfigError, Dialect, Unauthorized
from driftgate.proxy.templates.loader import TemplateSet
from driftgate.proxy.translate.input_checks import header_names
from driftgate.proxy.upstream import USER_AGENT, stream_timeout, whole_timeout
from driftgate.proxy.upstream.client import Timeouts

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
JSON_HEADERS: Mapping[str, str] = {"content-type": "application/json", "user-agent": USER_AGENT}


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(config: Config) -> None:
    """Refuse to listen beyond loopback unless DRIFTGATE_API_KEY guards the gateway."""
    if not is_loopback(config.host) and not config.api_key:
        raise ConfigError(
            f"refusing to listen on {config.host}: binding beyond 127.0.0.1 needs DRIFTGATE_API_KEY "
            "set (clients then send it as x-api-key or Authorization: Bearer)"
        )


class GatewayKey:
    """The gateway's own key, compared in constant time; never forwarded upstream."""

    def __init__(self, key: str | None) -> None:
        self._key = key.encode() if key else None
        self._bearer = f"Bearer {key}" if key else None
        self.value = key

    @property
    def required(self) -> bool:
        """Whether clients must present the key."""
        return self._key is not None

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise Unauthorized unless `headers` carry the key in x-api-key or Authorization."""
        if self._key is None:
            return
        api_key = headers.get("x-api-key")
        if api_key is not None and hmac.compare_digest(api_key.encode(), self._key):
            return
        auth = headers.get("authorization") or ""
        if auth[:7].lower() == "bearer " and hmac.compare_digest(
            auth[7:].strip().encode(), self._key
        ):
            return
        raise Unauthorized(
            "this gateway requires its key: send DRIFTGATE_API_KEY as x-api-key or Authorization: Bearer"
        )

    def is_gateway_credential(self, name: str, value: str) -> bool:
        """Whether a client header value is the gateway key itself (so it must not travel on)."""
        if self._key is None:
            return False
        if name == "x-api-key":
            return hmac.compare_digest(value.encode(), self._key)
        return self._bearer is not None and hmac.compare_digest(
            value.encode(), self._bearer.encode()
        )


@dataclass(frozen=True)
class BackendAuth:
    """A backend's precomputed request headers, endpoint URLs and dialect (nothing per request)."""

    backend: BackendConfig
    base_headers: Mapping[str, str]
    passthrough: bool
    stream_timeout: Timeouts
    whole_timeout: Timeouts
    dialect: Dialect = field(init=False)
    # the client dialects this backend takes as they are (what `serves` says, decided once)
    takes: frozenset[Dialect] = field(init=False, repr=False)
    # base_headers but the user-agent, which a client's own replaces
    owned_headers: Mapping[str, str] = field(init=False, repr=False)
    _urls: Mapping[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        base = self.backend.base_url
        urls = {
            "chat": base + "/chat/completions",
            "count_tokens": base + "/v1/messages/count_tokens",
            "messages": base + "/v1/messages",
            "responses": base + "/responses",
            "input_tokens": base + "/responses/input_tokens",
        }
        object.__setattr__(self, "_urls", urls)
        owned = {k: v for k, v in self.base_headers.items() if k != "user-agent"}
        object.__setattr__(self, "owned_headers", owned)
        dialect: Dialect = "anthropic" if self.backend.kind == "anthropic" else "openai"
        object.__setattr__(self, "dialect", dialect)
        takes = {dialect, "responses"} if self.backend.serves_responses else {dialect}
        object.__setattr__(self, "takes", frozenset(takes))

    def serves(self, dialect: Dialect) -> bool:
        """Whether this backend takes requests in `dialect` as they are."""
        return dialect in self.takes

    def url(self, endpoint: str) -> str:
        """The upstream URL for `endpoint` ("messages", "count_tokens", "chat", "responses"...)."""
        return self._urls.get(endpoint) or self._urls["messages"]


def backend_auth(backend: BackendConfig, env: Mapping[str, str]) -> BackendAuth:
    """Resolve the backend's key once, at start-up, into its header set."""
    headers = dict(JSON_HEADERS)
    key = backend.resolve_key(env)
    if key:
        check_key(backend, key)  # a stray newline is refused here, not as a 500 per request
    passthrough = backend.auth == "passthrough"
    if key and not passthrough:
        if backend.kind == "anthropic":
            headers["x-api-key"] = key
        else:
            headers["authorization"] = f"Bearer {key}"
    return BackendAuth(
        backend=backend,
        base_headers=headers,
        passthrough=passthrough,
        stream_timeout=stream_timeout(backend.connect_timeout, backend.timeout),
        whole_timeout=whole_timeout(backend.connect_timeout, backend.timeout),
    )


def anthropic_version(templates: TemplateSet) -> str:
    """The default anthropic-version: the anthropic template's api.version."""
    tpl = templates.get("anthropic")
    if tpl is not None:
        version = tpl.doc.get("api", {}).get("version")
        if isinstance(version, str) and version:
            return version
    return DEFAULT_ANTHROPIC_VERSION


class UpstreamHeaders(NamedTuple):
    """One upstream request's headers, and the client headers dropped on the way (`header:NAME`)."""

    headers: dict[str, str]
    dropped: tuple[str, ...]


_new_tuple = tuple.__new__


def upstream_headers(
    auth: BackendAuth,
    client_headers: Mapping[str, str],
    client_dialect: Dialect,
    default_version: str,
    gateway_key: GatewayKey,
    beta: str | None,
) -> UpstreamHeaders:
    """Headers for one upstream request: every client header the gateway does not own (open
    world, docs/translation.md), then the backend's content type and credential.

    `beta` is the client's anthropic-beta after filter_betas (None: send none).
    """
    vendor = "anthropic" if client_dialect == "anthropic" else "openai"
    named: list[str] = []
    headers = dict(auth.owned_headers)
    creds = forwardable(client_headers, headers, rule_for(vendor, auth.dialect), named)
    if "user-agent" not in headers:
        headers["user-agent"] = USER_AGENT  # the client's own when it sent one
    if auth.dialect == "anthropic":
        headers.pop("anthropic-beta", None)  # only the value filtered by beta_policy travels
        if beta:
            headers["anthropic-beta"] = beta
        if auth.passthrough and creds and client_dialect == "anthropic":
            for name in PASSTHROUGH_NAMES:
                cred = creds.get(name)
                if cred is not None and not gateway_key.is_gateway_credential(name, cred):
                    headers[name] = cred
        if "anthropic-version" not in headers:
            headers["anthropic-version"] = default_version
    # tuple.__new__: a NamedTuple's own __new__ is a Python function, one more call a request
    return _new_tuple(UpstreamHeaders, (headers, header_names(tuple(named)) if named else ()))
