"""Where the npm registry is (config, environment, .npmrc) and how names go into its URLs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from driftgate.proxy.errors import ConfigError

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
_NAME = re.compile(r"^(?:@[A-Za-z0-9][\w.~-]*/)?[A-Za-z0-9][\w.~-]*$")
_NPMRC_REGISTRY = re.compile(r"^\s*registry\s*=\s*(\S+)\s*$")
_USERINFO = re.compile(r"//[^/@\s]+@")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _normalise_url(raw: str, origin: str) -> str:
    url = raw.strip().strip("\"'")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{origin}: registry must be an http(s) URL, got {display_url(url)!r}")
    return url.rstrip("/") + "/"


def redact_userinfo(text: str) -> str:
    """`text` with the `user:password@` part of any URL in it masked."""
    return _USERINFO.sub("//***@", text)


def display_url(url: str, *, mask: str = "***@") -> str:
    """`url` with any user:password@ part replaced by `mask` (`""` drops it), safe to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=mask + parts.netloc.rsplit("@", 1)[1]))


def _npmrc_registry(path: Path, env: Mapping[str, str]) -> str | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    found = None
    for line in lines:
        m = _NPMRC_REGISTRY.match(line)
        if m:  # later lines win, as in npm's ini parser
            found = _ENV_REF.sub(lambda r: env.get(r.group(1), ""), m.group(1))
    return found or None


def resolve_registry_url(
    configured: str | None, env: Mapping[str, str], npmrc: Path | None = None
) -> str:
    """The registry base URL: config, then npm_config_registry, then .npmrc `registry=`, then npmjs."""
    if configured:
        return _normalise_url(configured, "--registry / [watch] registry")
    from_env = env.get("npm_config_registry") or env.get("NPM_CONFIG_REGISTRY")
    if from_env:
        return _normalise_url(from_env, "npm_config_registry")
    # None means the user's ~/.npmrc, found through the HOME the caller handed in.
    rc = npmrc if npmrc is not None else (Path(env["HOME"]) / ".npmrc" if env.get("HOME") else None)
    from_rc = _npmrc_registry(rc, env) if rc is not None else None
    if from_rc:
        return _normalise_url(from_rc, str(rc))
    return DEFAULT_REGISTRY


def check_package_name(package: str) -> str:
    """`package` if it is a valid npm name; ConfigError otherwise (it ends up in URLs and paths)."""
    if len(package) > 214 or not _NAME.match(package):
        raise ConfigError(f"not a valid npm package name: {package!r}")
    return package


def encode_name(package: str) -> str:
    """The name as it goes into a registry URL: `@scope/name` becomes `@scope%2fname`."""
    return quote(check_package_name(package), safe="@")
