"""Verify an npm tarball against its published integrity and read it in memory, safely."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import tarfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from driftgate.watchers.errors import IntegrityError, UnsafeArchive

MiB = 1024 * 1024


@dataclass(frozen=True)
class TarballLimits:
    """Ceilings a tarball must stay under before, while and after it is unpacked in memory."""

    max_compressed: int = 64 * MiB
    max_uncompressed: int = 256 * MiB
    max_files: int = 20000


DEFAULT_LIMITS = TarballLimits()


@dataclass(frozen=True)
class PackageFiles:
    """A package's regular files by path relative to the package root ("package/" stripped)."""

    files: Mapping[str, bytes]

    def text(self, path: str) -> str | None:
        """The file at `path` as UTF-8 text (undecodable bytes replaced), or None when absent."""
        data = self.files.get(path)
        return None if data is None else data.decode("utf-8", errors="replace")


def verify_integrity(data: bytes, integrity: str | None) -> None:
    """Raise IntegrityError unless `data` matches a sha512 entry of the SRI string `integrity`."""
    if not integrity or not integrity.strip():
        raise IntegrityError(
            "the registry published no integrity for this tarball; refusing to read it"
        )
    digests = [
        entry.split("-", 1)[1].split("?", 1)[0]
        for entry in integrity.split()
        if entry.startswith("sha512-")
    ]
    if not digests:
        algos = sorted({entry.split("-", 1)[0] for entry in integrity.split()})
        raise IntegrityError(
            f"integrity has no sha512 entry (only {', '.join(algos)}); refusing a weakly verified tarball"
        )
    actual = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if not any(hmac.compare_digest(actual, expected) for expected in digests):
        raise IntegrityError(
            f"tarball does not match its published integrity (expected {integrity[:24]}…, got sha512-{actual[:16]}…)"
        )


def _gunzip(data: bytes, limit: int) -> bytes:
    """Decompress every gzip member of `data`, stopping as soon as the output passes `limit`."""
    out = bytearray()
    pending = data
    while pending:
        decomp = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        buf = pending
        try:
            while buf and not decomp.eof:
                out += decomp.decompress(buf, limit + 1 - len(out))
                if len(out) > limit:
                    raise UnsafeArchive(
                        f"archive: uncompressed size passes the limit of {limit} bytes"
                    )
                buf = decomp.unconsumed_tail
        except zlib.error as exc:
            raise UnsafeArchive(f"archive: not a valid gzip stream ({exc})") from exc
        if not decomp.eof:
            raise UnsafeArchive("archive: gzip stream is truncated")
        pending = decomp.unused_data.lstrip(b"\0")
    return bytes(out)


def _safe_name(name: str) -> str:
    """The entry's path without its top directory; UnsafeArchive if the path could escape a root."""
    if "\0" in name:
        raise UnsafeArchive(f"entry {name!r}: NUL byte in path")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"entry {name!r}: absolute path")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"entry {name!r}: path climbs out of the package ('..')")
    # npm unpacks with strip=1: the top directory ("package/" by convention) is dropped.
    return "/".join(parts[1:])


def _check_type(member: tarfile.TarInfo) -> None:
    """UnsafeArchive for any entry that is not a plain file or directory."""
    if member.issym() or member.islnk():
        kind = "symbolic link" if member.issym() else "hard link"
        raise UnsafeArchive(f"entry {member.name!r}: {kind} to {member.linkname!r} refused")
    if member.ischr() or member.isblk() or member.isfifo():
        raise UnsafeArchive(f"entry {member.name!r}: device or fifo entry refused")
    if not (member.isreg() or member.isdir()):
        raise UnsafeArchive(f"entry {member.name!r}: unsupported entry type {member.type!r}")


def read_package(data: bytes, limits: TarballLimits) -> PackageFiles:
    """Read a .tgz entirely in memory; UnsafeArchive names the entry and the rule it broke."""
    if len(data) > limits.max_compressed:
        raise UnsafeArchive(
            f"archive: compressed size {len(data)} passes the limit of {limits.max_compressed} bytes"
        )
    raw = _gunzip(data, limits.max_uncompressed)
    files: dict[str, bytes] = {}
    total = 0
    count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tar:
            for member in tar:
                count += 1
                if count > limits.max_files:
                    raise UnsafeArchive(f"archive: more than {limits.max_files} entries")
                _check_type(member)
                path = _safe_name(member.name)
                if member.isdir() or not path:
                    continue
                total += member.size
                if total > limits.max_uncompressed:
                    raise UnsafeArchive(
                        f"entry {member.name!r}: files pass the uncompressed limit of {limits.max_uncompressed} bytes"
                    )
                if path in files:
                    raise UnsafeArchive(f"entry {member.name!r}: duplicate path")
                handle = tar.extractfile(member)
                files[path] = handle.read() if handle is not None else b""
    except tarfile.TarError as exc:
        raise UnsafeArchive(f"archive: not a readable tar archive ({exc})") from exc
    return PackageFiles(MappingProxyType(files))
