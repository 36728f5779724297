"""One backend's transport settings, and the TLS context they call for (built once, at start-up)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from driftgate.proxy.config import (
    DEFAULT_HAPPY_EYEBALLS_DELAY,
    DEFAULT_MAX_RESPONSE,
    BackendConfig,
    ProxyEnv,
)
from driftgate.proxy.errors import ConfigError

# Shorter than common servers' keep-alive (uvicorn: 5 s, nginx: 75 s, Node: 5 s), so a pooled
# connection is dropped by us before the server's close can race our next request on it.
IDLE_SECONDS = 4.0
DNS_TTL = 10  # seconds a resolved address list is reused for new connections


@dataclass(frozen=True)
class TransportSettings:
    """What a transport needs to know; backends with equal settings share one transport (one pool)."""

    kind: str = "fast"
    ca_bundle: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE
    happy_eyeballs_delay: float | None = DEFAULT_HAPPY_EYEBALLS_DELAY
    max_connections_per_host: int = 0
    idle_seconds: float = IDLE_SECONDS
    proxies: ProxyEnv = field(default_factory=ProxyEnv)


def settings_for(backend: BackendConfig, proxies: ProxyEnv) -> TransportSettings:
    """The transport settings a backend's config asks for."""
    return TransportSettings(
        kind=backend.transport,
        ca_bundle=backend.ca_bundle,
        client_cert=backend.client_cert,
        client_key=backend.client_key,
        max_response_bytes=backend.max_response_bytes,
        happy_eyeballs_delay=backend.happy_eyeballs_delay,
        max_connections_per_host=backend.max_connections_per_host,
        proxies=proxies,
    )


class TLSFileError(ConfigError):
    """A ca_bundle / client_cert / client_key file that TLS cannot use."""


def tls_context(settings: TransportSettings) -> ssl.SSLContext:
    """The verifying TLS context: the system's CAs or `ca_bundle`, plus the client certificate."""
    try:
        if settings.ca_bundle is not None:
            ctx = ssl.create_default_context(cafile=str(settings.ca_bundle))
        else:
            ctx = ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise TLSFileError(
            f"ca_bundle {str(settings.ca_bundle)!r} holds no usable PEM certificate ({exc})"
        ) from None
    if settings.client_cert is not None:
        key = str(settings.client_key) if settings.client_key is not None else None
        try:
            ctx.load_cert_chain(str(settings.client_cert), key)
        except (OSError, ssl.SSLError) as exc:
            raise TLSFileError(
                f"client_cert {str(settings.client_cert)!r} / client_key {key!r}: not a PEM "
                f"certificate and its unencrypted private key ({exc})"
            ) from None
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
