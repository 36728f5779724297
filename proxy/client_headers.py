"""Which client request headers travel upstream: forwarded as sent, owned by the gateway, or
(across dialects) the other vendor's, dropped and named in x-driftgate-dropped.

Open-world: a header the gateway does not know is forwarded. The gateway owns only what it must
(framing, hop-by-hop, the client's credentials, compression its transport manages, its own
x-driftgate-*); it never adds a header to disguise a client. Each header name is classified once
and the decision kept, so a request costs a dict lookup per header.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

FORWARD = 0  # any dialect-neutral or unknown header: sent on as the client sent it
OWNED = 1  # the gateway's: framing, hop-by-hop, compression, x-driftgate-*; never sent on
CREDENTIAL = 2  # replaced by the backend's configured key (or passed through where configured)
ANTHROPIC = 3  # anthropic-* other than anthropic-beta
ANTHROPIC_BETA = 4  # filtered by the template's beta_policy before it travels
OPENAI = 5  # openai-* (OpenAI-Beta, OpenAI-Organization, OpenAI-Project...)
# anthropic-version: the version of the dialect the gateway itself read the request in. Across
# dialects it is consumed by the translation, not lost: not sent, and not named as dropped
# (naming it on every translated request hid the headers that were lost).
DIALECT_VERSION = 6

# RFC 9110 7.6.1 hop-by-hop fields, plus the framing and body coding the gateway recomputes: the
# body sent is JSON the gateway read (decoded from any Content-Encoding), with its own length.
OWNED_NAMES = frozenset(
    {
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-type",
        "content-encoding",
        "expect",  # 100-continue is between the client and the gateway
        "accept-encoding",  # both transports send identity and decode themselves
        "http2-settings",
    }
)
# A client's credentials: for this gateway, or scoped to its origin (cookies); never sent on as
# they are, except the configured passthrough of x-api-key / Authorization.
CREDENTIAL_NAMES = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie"})
OWNED_PREFIXES = ("proxy-", "x-driftgate-")
PASSTHROUGH_NAMES = frozenset({"x-api-key", "authorization"})
_CACHE_LIMIT = 4096  # distinct raw names remembered; past it a name is classified each time
_CACHED_NAME_CHARS = 64  # a longer name is classified each time: the memo stays small
_kinds: dict[str, tuple[str, int]] = {}


def classify(lower: str) -> int:
    """The class of a lower-cased header name."""
    if lower in OWNED_NAMES or lower.startswith(OWNED_PREFIXES):
        return OWNED
    if lower in CREDENTIAL_NAMES:
        return CREDENTIAL
    if lower.startswith("anthropic-"):
        if lower == "anthropic-version":
            return DIALECT_VERSION
        return ANTHROPIC_BETA if lower == "anthropic-beta" else ANTHROPIC
    if lower.startswith("openai-"):
        return OPENAI
    return FORWARD


def kind_of(name: str) -> tuple[str, int]:
    """(lower-cased name, class) for a header name as the client spelled it."""
    kind = _kinds.get(name)
    if kind is None:
        lower = name.lower()
        kind = (lower, classify(lower))
        if len(_kinds) < _CACHE_LIMIT and len(name) <= _CACHED_NAME_CHARS:
            _kinds[name] = kind
    return kind


@lru_cache(maxsize=256)
def connection_names(value: str) -> frozenset[str]:
    """The header names a Connection value lists (RFC 9110 7.6.1): hop-by-hop for this hop."""
    return frozenset(t for t in (p.strip().lower() for p in value.split(",")) if t)


class Rule(NamedTuple):
    """The classes sent on and the classes dropped (and named) for one kind of crossing."""

    send: frozenset[int]
    drop: frozenset[int]


SAME_DIALECT = Rule(
    frozenset({FORWARD, ANTHROPIC, ANTHROPIC_BETA, OPENAI, DIALECT_VERSION}), frozenset()
)
TO_OPENAI = Rule(frozenset({FORWARD, OPENAI}), frozenset({ANTHROPIC, ANTHROPIC_BETA}))
TO_ANTHROPIC = Rule(
    frozenset({FORWARD, ANTHROPIC, ANTHROPIC_BETA, DIALECT_VERSION}), frozenset({OPENAI})
)


def rule_for(client_vendor: str, backend_dialect: str) -> Rule:
    """Same-dialect requests keep every header; across dialects the other vendor's are dropped
    and named (an OpenAI client's anthropic-* reaches an Anthropic backend: its own vendor's)."""
    if client_vendor == backend_dialect:
        return SAME_DIALECT
    return TO_OPENAI if backend_dialect == "openai" else TO_ANTHROPIC


def forwardable(
    client_headers: Mapping[str, str], out: dict[str, str], rule: Rule, dropped: list[str]
) -> dict[str, str] | None:
    """Put into `out` the client headers `rule` sends on; return the client's credentials by
    lower-cased name (None: it sent none). Names `rule` drops go into `dropped` as
    `header:NAME`. Repeated names are joined with ", " (RFC 9110 5.3).

    `out` must hold no name a client could send on (only owned or credential names).
    """
    creds: dict[str, str] | None = None
    kinds = _kinds
    send = rule.send
    for name, value in client_headers.items():
        kind = kinds.get(name)
        if kind is None:
            kind = kind_of(name)
        lower, cls = kind
        if cls in send:
            if lower in out:
                out[lower] = f"{out[lower]}, {value}"
            else:
                out[lower] = value
        elif cls == CREDENTIAL:
            if creds is None:
                creds = {}
            creds[lower] = value
        elif cls in rule.drop:
            named = "header:" + lower
            if named not in dropped:
                dropped.append(named)
    connection = client_headers.get("connection")
    if connection:
        for hop in connection_names(connection):
            out.pop(hop, None)  # named in Connection: for this hop only (RFC 9110 7.6.1)
    return creds
