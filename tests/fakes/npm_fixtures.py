"""Pytest fixtures for the local npm registry (Verdaccio).

One real Verdaccio per xdist worker (session scope), on 127.0.0.1 with a free port, storage in a
temporary directory, no uplinks. Tests publish synthetic packages into it with the real `npm` CLI
(`publish_package`) or, for archives npm itself would never produce, with a hand-made publish
document (`publish_raw`).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
VERDACCIO_PKG = ROOT / "node_modules" / "verdaccio"
START_TIMEOUT = 60.0

# Verdaccio's CLI refuses Node < 22 up front; its server runs fine on the Node 20 we have, so the
# launcher starts it through the documented programmatic API and listens on port 0 (no port race).
LAUNCHER = """
const { runServer } = require(process.argv[1]);
runServer(process.argv[2]).then((server) => {
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(`VERDACCIO_PORT=${server.address().port}\\n`);
  });
}).catch((err) => { console.error(err); process.exit(1); });
// The test process holds our stdin: when it goes away (even killed), so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
"""

CONFIG = """\
storage: {storage}
auth:
  htpasswd:
    file: {htpasswd}
    max_users: 100
uplinks: {{}}
packages:
  '**':
    access: $all
    publish: $authenticated
    unpublish: $authenticated
max_body_size: 50mb
web:
  enable: false
log: {{ type: stdout, format: pretty, level: warn }}
"""


def unique_package(prefix: str = "sdk") -> str:
    """A scoped package name no other test uses, so one registry serves every test."""
    return f"@drifttest/{prefix}-{uuid.uuid4().hex[:8]}"


def sri_sha512(data: bytes) -> str:
    """The npm `dist.integrity` string of `data`."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def build_tgz(entries: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """A gzip tarball of exactly these entries, built in memory (any name, type or link)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def file_entry(name: str, data: bytes | str) -> tuple[tarfile.TarInfo, bytes]:
    """A regular-file entry for build_tgz."""
    raw = data.encode() if isinstance(data, str) else data
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, raw


def package_tgz(name: str, version: str, files: Mapping[str, str | bytes]) -> bytes:
    """A well-formed npm tarball (package/ prefix, package.json included)."""
    manifest = json.dumps({"name": name, "version": version})
    entries = [file_entry("package/package.json", manifest)]
    entries += [file_entry(f"package/{path}", data) for path, data in files.items()]
    return build_tgz(entries)


@dataclass
class Verdaccio:
    """A running Verdaccio and what a test needs to publish into it."""

    url: str  # with a trailing slash
    storage: Path
    token: str
    userconfig: Path
    workdir: Path
    log: Path

    def _npm_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
        env.update(
            npm_config_userconfig=str(self.userconfig),
            npm_config_cache=str(self.workdir / "npm-cache"),
            npm_config_update_notifier="false",
            npm_config_fund="false",
            npm_config_audit="false",
        )
        return env

    def publish_package(
        self,
        name: str,
        version: str,
        files: Mapping[str, str | bytes],
        package_json_extra: Mapping[str, Any] | None = None,
        tag: str = "latest",
    ) -> None:
        """Write a package directory and publish it with the real `npm publish`."""
        pkg_dir = (
            self.workdir / "packages" / f"{quote(name, safe='')}-{version}-{uuid.uuid4().hex[:6]}"
        )
        pkg_dir.mkdir(parents=True)
        manifest = {"name": name, "version": version, **(package_json_extra or {})}
        (pkg_dir / "package.json").write_text(json.dumps(manifest, indent=2))
        for rel, data in files.items():
            target = pkg_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                target.write_bytes(data)
            else:
                target.write_text(data)
        cmd = ["npm", "publish", "--registry", self.url, "--tag", tag, "--ignore-scripts"]
        done = subprocess.run(
            cmd, cwd=pkg_dir, env=self._npm_env(), capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise AssertionError(
                f"npm publish {name}@{version} failed:\n{done.stdout}\n{done.stderr}"
            )

    def publish_raw(
        self,
        name: str,
        version: str,
        tgz: bytes,
        *,
        integrity: str | None = "computed",
        tag: str = "latest",
    ) -> str:
        """Publish `tgz` as-is with a hand-made publish document; returns the integrity announced.

        `integrity="computed"` announces the tarball's true sha512; None announces none at all.
        """
        announced = sri_sha512(tgz) if integrity == "computed" else integrity
        base = name.rsplit("/", 1)[-1]
        filename = f"{base}-{version}.tgz"
        dist: dict[str, Any] = {
            "shasum": hashlib.sha1(tgz).hexdigest(),
            "tarball": f"{self.url}{name}/-/{filename}",
        }
        if announced is not None:
            dist["integrity"] = announced
        doc = {
            "_id": name,
            "name": name,
            "dist-tags": {tag: version},
            "versions": {
                version: {
                    "name": name,
                    "version": version,
                    "_id": f"{name}@{version}",
                    "dist": dist,
                }
            },
            "_attachments": {
                filename: {
                    "content_type": "application/octet-stream",
                    "data": base64.b64encode(tgz).decode(),
                    "length": len(tgz),
                }
            },
        }
        r = httpx.put(
            f"{self.url}{quote(name, safe='@')}",
            json=doc,
            headers={"authorization": f"Bearer {self.token}"},
            timeout=60,
        )
        assert r.status_code in (200, 201), (
            f"raw publish {name}@{version}: {r.status_code} {r.text}"
        )
        return announced or ""

    def tarball_path(self, name: str, version: str) -> Path:
        """Where Verdaccio stores the tarball of name@version."""
        return self.storage / name / f"{name.rsplit('/', 1)[-1]}-{version}.tgz"

    def tamper_tarball(self, name: str, version: str, data: bytes) -> None:
        """Replace the stored tarball behind the registry's back (its integrity stays the old one)."""
        path = self.tarball_path(name, version)
        assert path.exists(), f"no stored tarball at {path}"
        path.write_bytes(data)


def _wait_for_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        m = re.search(r"VERDACCIO_PORT=(\d+)", text)
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    text = log.read_text(errors="replace") if log.exists() else ""
    raise RuntimeError(f"Verdaccio did not start (exit {proc.poll()}); its log:\n{text[-4000:]}")


def _create_user(url: str) -> str:
    user = f"drift{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    body = {"name": user, "password": password, "type": "user", "_id": f"org.couchdb.user:{user}"}
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            r = httpx.put(f"{url}-/user/org.couchdb.user:{user}", json=body, timeout=10)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert r.status_code == 201, f"creating the Verdaccio user failed: {r.status_code} {r.text}"
    return str(r.json()["token"])


@pytest.fixture(scope="session")
def verdaccio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verdaccio]:
    """A real Verdaccio on loopback for this worker's whole session, killed at the end."""
    node = shutil.which("node")
    if node is None or not (VERDACCIO_PKG / "package.json").exists():
        pytest.fail(
            "Verdaccio needs node and node_modules/verdaccio: run `npm ci` (tests/run does)"
        )
    workdir = tmp_path_factory.mktemp("verdaccio")
    storage = workdir / "storage"
    storage.mkdir()
    config = workdir / "config.yaml"
    config.write_text(CONFIG.format(storage=storage, htpasswd=workdir / "htpasswd"))
    log = workdir / "verdaccio.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [node, "-e", LAUNCHER, str(VERDACCIO_PKG), str(config)],
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    try:
        port = _wait_for_port(proc, log)
        url = f"http://127.0.0.1:{port}/"
        token = _create_user(url)
        userconfig = workdir / "npmrc"
        userconfig.write_text(f"registry={url}\n//127.0.0.1:{port}/:_authToken={token}\n")
        userconfig.chmod(0o600)
        yield Verdaccio(url, storage, token, userconfig, workdir, log)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def publish_package(verdaccio: Verdaccio) -> Any:
    """`publish_package(name, version, files, package_json_extra=...)` into the worker's Verdaccio."""
    return verdaccio.publish_package
