"""The npm side of drift watching: registry client and safe tarball reading."""

from watchers.npm.registry import (
    DEFAULT_REGISTRY,
    NpmRegistry,
    VersionInfo,
    resolve_registry_url,
)
from watchers.npm.tarball import (
    DEFAULT_LIMITS,
    PackageFiles,
    TarballLimits,
    read_package,
    verify_integrity,
)

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_REGISTRY",
    "NpmRegistry",
    "PackageFiles",
    "TarballLimits",
    "VersionInfo",
    "read_package",
    "resolve_registry_url",
    "verify_integrity",
]
