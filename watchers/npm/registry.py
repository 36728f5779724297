"""The npm registry protocol, as little of it as the watcher needs, over a passed-in httpx client."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from driftgate.watchers.atomic_file import write_atomically
from driftgate.watchers.errors import RegistryError, UnsafeArchive
from driftgate.watchers.network_errors import in_words
from driftgate.watchers.npm.registry_url import (
    display_url,
    encode_name,
    redact_userinfo,
)
from driftgate.watchers.npm.tarball import (
    DEFAULT_LIMITS,
    PackageFiles,
    TarballLimits,
    read_package,
    verify_integrity,
)

ABBREVIATED = "application/vnd.npm.install-v1+json"
# An hourly job should not fail on one 503 from a CDN edge: two more tries, 1 s then 2 s apart
# (or the registry's Retry-After, capped so a run never hangs on it).
RETRIES = 2
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 30.0


@dataclass(frozen=True)
class VersionInfo:
    """One published version: where its tarball is and what it must hash to."""

    package: str
    version: str
    tarball_url: str
    integrity: str | None
    engines: Mapping[str, str] = field(default_factory=dict)


class _Transient(Exception):
    """A failure worth another try: a transport error, 429 or a 5xx."""

    def __init__(self, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _transport_failure(exc: httpx.HTTPError, label: str) -> Exception:
    """A transport error is worth another try; any other httpx error is the registry's answer."""
    if isinstance(exc, httpx.TransportError):
        message = f"{label}: {in_words(exc)}"
    else:
        message = f"{label}: {redact_userinfo(str(exc))}"
    return _Transient(message) if isinstance(exc, httpx.TransportError) else RegistryError(message)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _version_from_doc(package: str, version: str, doc: Mapping[str, Any]) -> VersionInfo | None:
    versions = doc.get("versions")
    entry = versions.get(version) if isinstance(versions, dict) else None
    if not isinstance(entry, dict):
        return None
    dist = _dict(entry.get("dist"))
    tarball = dist.get("tarball")
    if not isinstance(tarball, str) or not tarball:
        return None
    integrity = dist.get("integrity")
    engines = entry.get("engines")
    return VersionInfo(
        package=package,
        version=version,
        tarball_url=tarball,
        integrity=integrity if isinstance(integrity, str) else None,
        engines={str(k): str(v) for k, v in engines.items()} if isinstance(engines, dict) else {},
    )


class NpmRegistry:
    """dist-tags, version metadata (cached abbreviated packuments) and verified tarballs.

    `bytes_transferred` counts response body bytes as received on the wire (compressed when the
    registry compresses), headers excluded.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client,
        cache_dir: Path,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._client = client
        self._cache_dir = cache_dir
        self._sleep = sleep
        self.bytes_transferred = 0

    def _retrying(self, attempt: Callable[[], Any]) -> Any:
        """`attempt()`, tried again after a _Transient failure; RegistryError once tries run out."""
        for n in range(RETRIES + 1):
            try:
                return attempt()
            except _Transient as exc:
                if n == RETRIES:
                    raise RegistryError(f"{exc} (after {RETRIES + 1} tries)") from exc
                self._sleep(_retry_wait(exc.retry_after, n))
        raise AssertionError("unreachable")

    def _get(self, url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
        def once() -> httpx.Response:
            try:
                response = self._client.get(url, headers=dict(headers or {}), follow_redirects=True)
            except httpx.HTTPError as exc:
                raise _transport_failure(exc, f"registry {display_url(url)}") from exc
            self.bytes_transferred += response.num_bytes_downloaded
            if response.status_code in RETRY_STATUSES:
                raise _Transient(
                    f"registry {display_url(url)}: HTTP {response.status_code}",
                    response.headers.get("retry-after"),
                )
            return response

        result: httpx.Response = self._retrying(once)
        return result

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code == 404:
            raise RegistryError(f"{what}: not found on {display_url(self.base_url)}")
        if response.status_code != 200:
            raise RegistryError(f"{what}: registry answered HTTP {response.status_code}")
        try:
            doc = response.json()
        except ValueError as exc:
            raise RegistryError(f"{what}: registry answered something that is not JSON") from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"{what}: registry answered JSON that is not an object")
        return doc

    def dist_tags(self, package: str) -> dict[str, str]:
        """The package's dist-tags (tag -> version): one tiny request."""
        url = f"{self.base_url}-/package/{encode_name(package)}/dist-tags"
        doc = self._json(self._get(url, {"Accept": "application/json"}), f"{package} dist-tags")
        tags = {str(k): v for k, v in doc.items() if isinstance(v, str)}
        if not tags:
            raise RegistryError(f"{package} dist-tags: registry answered no tags")
        return tags

    def _cache_path(self, package: str) -> Path:
        return self._cache_dir / f"{encode_name(package)}.json"

    def _load_cache(self, package: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self._cache_path(package).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(entry, dict) or entry.get("registry") != self.base_url:
            return None
        if not isinstance(entry.get("packument"), dict):
            return None
        return entry

    def _store_cache(self, package: str, entry: Mapping[str, Any]) -> None:
        # A cache that cannot be written only costs a download next time.
        with contextlib.suppress(OSError):
            write_atomically(self._cache_path(package), json.dumps(entry))

    def version_info(self, package: str, version: str) -> VersionInfo:
        """Metadata of one version, from the cache when known, else a conditional packument fetch."""
        cached = self._load_cache(package)
        if cached is not None:
            # Published versions are immutable on npm, so a cached one needs no revalidation.
            info = _version_from_doc(package, version, cached["packument"])
            if info is not None:
                return info
        info = _version_from_doc(package, version, self.packument(package, cached))
        if info is None:
            raise RegistryError(f"{package}@{version}: version not in the registry's packument")
        return info

    def packument(self, package: str, cached: dict[str, Any] | None = None) -> Mapping[str, Any]:
        """The (trimmed) packument, revalidated against the cache with ETag / Last-Modified."""
        cached = cached if cached is not None else self._load_cache(package)
        headers = {"Accept": f"{ABBREVIATED}; q=1.0, application/json; q=0.8"}
        if cached is not None and cached.get("etag"):
            headers["If-None-Match"] = str(cached["etag"])
        if cached is not None and cached.get("last_modified"):
            headers["If-Modified-Since"] = str(cached["last_modified"])
        response = self._get(f"{self.base_url}{encode_name(package)}", headers)
        if response.status_code == 304 and cached is not None:
            doc: Mapping[str, Any] = cached["packument"]
        else:
            doc = _trim(self._json(response, f"{package} packument"))
            self._store_cache(
                package,
                {
                    "registry": self.base_url,
                    "etag": response.headers.get("etag"),
                    "last_modified": response.headers.get("last-modified"),
                    "packument": doc,
                    "fetched_at": time.time(),
                },
            )
        return doc

    def releases(self, package: str, max_age: float = 0.0) -> list[tuple[str, str | None]]:
        """(version, publish time) of every release, oldest first (by time when the registry
        gives it, else in the packument's order); a cached list younger than `max_age` seconds
        is used as is (the public registry sends no ETag, so revalidating is a full download)."""
        cached = self._load_cache(package)
        fresh = cached is not None and time.time() - float(cached.get("fetched_at") or 0) < max_age
        doc = (
            cached["packument"] if fresh and cached is not None else self.packument(package, cached)
        )
        times = _dict(doc.get("time"))
        versions = list(_dict(doc.get("versions")))
        order = {v: i for i, v in enumerate(versions)}
        versions.sort(key=lambda v: (str(times.get(v, "")), order[v]))
        return [(v, times.get(v) if isinstance(times.get(v), str) else None) for v in versions]

    def tarball(self, info: VersionInfo, limits: TarballLimits = DEFAULT_LIMITS) -> PackageFiles:
        """Download the version's tarball (bounded), verify its integrity, then read it in memory."""
        if urlsplit(info.tarball_url).scheme not in ("http", "https"):
            raise RegistryError(f"{info.package}@{info.version}: tarball URL is not http(s)")
        data: bytes = self._retrying(lambda: self._download(info, limits))
        verify_integrity(data, info.integrity)
        return read_package(data, limits)

    def _download(self, info: VersionInfo, limits: TarballLimits) -> bytes:
        url = info.tarball_url
        what = f"{info.package}@{info.version} tarball"
        chunks: list[bytes] = []
        size = 0
        try:
            with self._client.stream("GET", url, follow_redirects=True) as response:
                try:
                    if response.status_code in RETRY_STATUSES:
                        raise _Transient(
                            f"{what}: registry answered HTTP {response.status_code}",
                            response.headers.get("retry-after"),
                        )
                    if response.status_code != 200:
                        raise RegistryError(
                            f"{what}: registry answered HTTP {response.status_code}"
                        )
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > limits.max_compressed:
                            raise UnsafeArchive(
                                f"{info.package}@{info.version}: tarball passes the compressed limit of "
                                f"{limits.max_compressed} bytes"
                            )
                        chunks.append(chunk)
                finally:
                    self.bytes_transferred += response.num_bytes_downloaded
        except httpx.HTTPError as exc:
            raise _transport_failure(exc, f"tarball {display_url(url)}") from exc
        return b"".join(chunks)


def _retry_wait(retry_after: str | None, attempt: int) -> float:
    """Retry-After in seconds when the registry sent a number, else 1 s, 2 s, ...; capped."""
    try:
        wait = float(retry_after) if retry_after is not None else 2.0**attempt
    except ValueError:
        wait = 2.0**attempt
    return min(max(wait, 0.0), MAX_RETRY_AFTER)


def _trim(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Only what version_info reads, so the on-disk cache stays small."""
    versions: dict[str, Any] = {}
    raw = doc.get("versions")
    for ver, entry in raw.items() if isinstance(raw, dict) else []:
        if not isinstance(entry, dict):
            continue
        dist = _dict(entry.get("dist"))
        kept: dict[str, Any] = {"dist": {k: dist[k] for k in ("tarball", "integrity") if k in dist}}
        if isinstance(entry.get("engines"), dict):
            kept["engines"] = entry["engines"]
        versions[str(ver)] = kept
    tags = doc.get("dist-tags")
    times = {
        k: v for k, v in _dict(doc.get("time")).items() if k in versions and isinstance(v, str)
    }
    return {
        "dist-tags": tags if isinstance(tags, dict) else {},
        "versions": versions,
        "time": times,
    }
