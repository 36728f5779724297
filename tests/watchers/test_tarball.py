"""Integrity checking and the in-memory, limit-bound tarball reader."""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import tarfile
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftgate.watchers.errors import IntegrityError, UnsafeArchive
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.tarball import (
    DEFAULT_LIMITS,
    TarballLimits,
    read_package,
    verify_integrity,
)
from tests.fakes.npm_fixtures import (
    Verdaccio,
    build_tgz,
    file_entry,
    package_tgz,
    sri_sha512,
    unique_package,
)


def _entry(name: str, kind: bytes, linkname: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info, None


def test_reads_files_relative_to_the_package_root() -> None:
    tgz = package_tgz("@x/y", "1.0.0", {"a.d.ts": "export type A = 'a';", "dir/b.js": b"\xff\xfe"})
    pkg = read_package(tgz, DEFAULT_LIMITS)
    assert set(pkg.files) == {"package.json", "a.d.ts", "dir/b.js"}
    assert pkg.text("a.d.ts") == "export type A = 'a';"
    assert pkg.files["dir/b.js"] == b"\xff\xfe"
    assert pkg.text("dir/b.js") == "\ufffd\ufffd"  # undecodable bytes never raise
    assert pkg.text("missing.d.ts") is None


def test_top_directory_other_than_package_is_stripped_like_npm_does() -> None:
    tgz = build_tgz(
        [file_entry("node-foo/index.d.ts", "x"), _entry("node-foo/sub", tarfile.DIRTYPE)]
    )
    assert dict(read_package(tgz, DEFAULT_LIMITS).files) == {"index.d.ts": b"x"}


def test_integrity_accepts_matching_sha512_among_several_entries() -> None:
    data = b"tarball bytes"
    verify_integrity(data, f"sha1-AAAA {sri_sha512(data)}")


@pytest.mark.parametrize(
    ("integrity", "needle"),
    [
        (None, "no integrity"),
        ("", "no integrity"),
        ("sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "no sha512"),
        (sri_sha512(b"other bytes"), "does not match"),
    ],
)
def test_integrity_refuses_missing_weak_or_wrong(integrity: str | None, needle: str) -> None:
    with pytest.raises(IntegrityError, match=needle):
        verify_integrity(b"tarball bytes", integrity)


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        (file_entry("package/../../evil.sh", "x"), r"'\.\.'"),
        (file_entry("../evil.sh", "x"), r"'\.\.'"),
        (file_entry("/etc/cron.d/evil", "x"), "absolute path"),
        (file_entry("C:/Windows/evil", "x"), "absolute path"),
        (_entry("package/link", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
        (_entry("package/hard", tarfile.LNKTYPE, "package/package.json"), "hard link"),
        (_entry("package/tty", tarfile.CHRTYPE), "device"),
        (_entry("package/disk", tarfile.BLKTYPE), "device"),
        (_entry("package/pipe", tarfile.FIFOTYPE), "device or fifo"),
    ],
)
def test_unsafe_entries_are_refused_naming_entry_and_rule(
    entry: tuple[tarfile.TarInfo, bytes | None],
    rule: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    tgz = build_tgz([file_entry("package/package.json", "{}"), entry])
    with pytest.raises(UnsafeArchive, match=rule) as caught:
        read_package(tgz, DEFAULT_LIMITS)
    assert repr(entry[0].name)[1:-1] in str(caught.value)
    assert os.listdir(tmp_path) == []  # nothing was written anywhere an entry names


def test_oversized_by_compressed_size_is_refused_before_unpacking() -> None:
    tgz = package_tgz("@x/y", "1.0.0", {"big.bin": os.urandom(4096)})
    with pytest.raises(UnsafeArchive, match="compressed size"):
        read_package(tgz, TarballLimits(max_compressed=len(tgz) - 1))


def test_gzip_bomb_is_stopped_at_the_uncompressed_limit() -> None:
    tgz = package_tgz("@x/y", "1.0.0", {"zeros.bin": bytes(8 * 1024 * 1024)})
    assert len(tgz) < 64 * 1024
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        read_package(tgz, TarballLimits(max_uncompressed=1024 * 1024))


def test_files_over_the_uncompressed_limit_are_refused() -> None:
    # The tar stream itself fits; the declared file sizes add up past the limit.
    tgz = package_tgz("@x/y", "1.0.0", {"a.bin": bytes(3000), "b.bin": bytes(3000)})
    raw_size = len(gzip.decompress(tgz))
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        read_package(tgz, TarballLimits(max_uncompressed=min(raw_size, 5000)))


def test_too_many_files_is_refused() -> None:
    tgz = package_tgz("@x/y", "1.0.0", {f"f{i}.js": "x" for i in range(20)})
    with pytest.raises(UnsafeArchive, match="more than 10 entries"):
        read_package(tgz, TarballLimits(max_files=10))


def test_duplicate_paths_are_refused() -> None:
    tgz = build_tgz([file_entry("package/a.js", "1"), file_entry("package/a.js", "2")])
    with pytest.raises(UnsafeArchive, match="duplicate"):
        read_package(tgz, DEFAULT_LIMITS)


@pytest.mark.parametrize(
    "data",
    [
        b"not gzip at all",
        package_tgz("@x/y", "1.0.0", {"a": "b"})[:-20],
        gzip.compress(b"\x01" * 700),
    ],
    ids=["not-gzip", "truncated", "gzip-of-garbage"],
)
def test_corrupt_archives_are_refused_cleanly(data: bytes) -> None:
    with pytest.raises(UnsafeArchive):
        read_package(data, DEFAULT_LIMITS)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash_the_reader(data: bytes) -> None:
    with contextlib.suppress(UnsafeArchive):  # any other exception fails the test
        read_package(data, TarballLimits(max_uncompressed=1 << 20))


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=1024))
def test_arbitrary_gzip_payloads_never_crash_the_reader(payload: bytes) -> None:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(payload)
    with contextlib.suppress(UnsafeArchive):
        read_package(buf.getvalue(), TarballLimits(max_uncompressed=1 << 20))


# Through the real registry: the bytes a test put there come back through NpmRegistry.tarball.


@pytest.mark.verdaccio
def test_tampered_tarball_is_refused_by_integrity(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.0.0", {"index.d.ts": "export {};"})
    verdaccio.tamper_tarball(name, "1.0.0", package_tgz(name, "1.0.0", {"index.d.ts": "evil"}))
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        info = reg.version_info(name, "1.0.0")
        with pytest.raises(IntegrityError, match="does not match"):
            reg.tarball(info)


@pytest.mark.verdaccio
@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        (file_entry("package/../../../tmp/pwned", "x"), r"'\.\.'"),
        (_entry("package/index.d.ts", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link"),
    ],
    ids=["traversal", "symlink"],
)
def test_malicious_tarball_with_valid_integrity_is_refused(
    verdaccio: Verdaccio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    entry: tuple[tarfile.TarInfo, bytes | None],
    rule: str,
) -> None:
    name = unique_package("evil")
    tgz = build_tgz([file_entry("package/package.json", "{}"), entry])
    verdaccio.publish_raw(name, "1.0.0", tgz)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path / "cache")
        info = reg.version_info(name, "1.0.0")
        with pytest.raises(UnsafeArchive, match=rule):
            reg.tarball(info)
    assert os.listdir(work) == []


@pytest.mark.verdaccio
def test_oversized_download_is_cut_off(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package("big")
    tgz = package_tgz(name, "1.0.0", {"noise.bin": os.urandom(200_000)})
    verdaccio.publish_raw(name, "1.0.0", tgz)
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        info = reg.version_info(name, "1.0.0")
        with pytest.raises(UnsafeArchive, match="compressed limit"):
            reg.tarball(info, TarballLimits(max_compressed=50_000))
        assert reg.tarball(info).files["noise.bin"]  # the same tarball reads under the defaults


@pytest.mark.verdaccio
def test_tarball_without_published_integrity_is_refused(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    name = unique_package("noint")
    verdaccio.publish_raw(name, "1.0.0", package_tgz(name, "1.0.0", {"a.js": "1"}), integrity=None)
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        info = reg.version_info(name, "1.0.0")
        if info.integrity is not None:
            pytest.skip("this Verdaccio adds an integrity of its own to raw publishes")
        with pytest.raises(IntegrityError, match="no integrity"):
            reg.tarball(info)
