"""The registry client against a real Verdaccio, and against a registry that sends no validators."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from driftgate.proxy.errors import ConfigError
from driftgate.watchers.errors import RegistryError
from driftgate.watchers.npm.registry import NpmRegistry
from driftgate.watchers.npm.registry_url import DEFAULT_REGISTRY, resolve_registry_url
from tests.fakes.npm_fixtures import Verdaccio, package_tgz, sri_sha512, unique_package
from tests.fakes.server_thread import closed_port

# --- registry URL resolution -----------------------------------------------------------------


def test_resolution_order_config_env_npmrc_default(tmp_path: Path) -> None:
    rc = tmp_path / "npmrc"
    rc.write_text(
        "; comment\n@corp:registry=https://scoped.example/\nregistry = https://rc.example/npm\n"
    )
    env = {"npm_config_registry": "https://env.example/"}
    assert resolve_registry_url("https://cfg.example", env, rc) == "https://cfg.example/"
    assert resolve_registry_url(None, env, rc) == "https://env.example/"
    assert resolve_registry_url(None, {}, rc) == "https://rc.example/npm/"
    assert resolve_registry_url(None, {}, tmp_path / "absent") == DEFAULT_REGISTRY


def test_npmrc_defaults_to_home_from_the_given_env_and_expands_variables(tmp_path: Path) -> None:
    (tmp_path / ".npmrc").write_text("registry=https://${NPM_HOST}/base/\n")
    env = {"HOME": str(tmp_path), "NPM_HOST": "mirror.example"}
    assert resolve_registry_url(None, env) == "https://mirror.example/base/"
    assert resolve_registry_url(None, {}) == DEFAULT_REGISTRY  # no HOME given: no npmrc read


@pytest.mark.parametrize("bad", ["ftp://x.example/", "registry.example", "file:///etc/passwd"])
def test_a_registry_that_is_not_http_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="http"):
        resolve_registry_url(bad, {})


def test_credentials_in_a_registry_url_never_reach_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_registry_url("ftp://user:s3cretpw@host.example/", {})
    assert "s3cretpw" not in str(caught.value)
    with httpx.Client() as client:
        reg = NpmRegistry(
            f"http://user:s3cretpw@127.0.0.1:{closed_port()}/",
            client=client,
            cache_dir=tmp_path,
            sleep=lambda _s: None,
        )
        with pytest.raises(RegistryError) as down:
            reg.dist_tags("openai")
    assert "s3cretpw" not in str(down.value)


@pytest.mark.parametrize("name", ["../etc", "@scope/../x", "a b", "", "@/x", "x/y/z"])
def test_invalid_package_names_are_refused_before_any_request(name: str, tmp_path: Path) -> None:
    with httpx.Client() as client:
        reg = NpmRegistry("http://127.0.0.1:9/", client=client, cache_dir=tmp_path)
        with pytest.raises(ConfigError, match="package name"):
            reg.dist_tags(name)
    assert reg.bytes_transferred == 0


def test_registry_down_is_a_registry_error(tmp_path: Path) -> None:
    with httpx.Client(timeout=5) as client:
        waits: list[float] = []
        reg = NpmRegistry(
            f"http://127.0.0.1:{closed_port()}/",
            client=client,
            cache_dir=tmp_path,
            sleep=waits.append,
        )
        with pytest.raises(RegistryError) as exc:
            reg.dist_tags("openai")
        assert "connection refused (nothing is listening at that address)" in str(exc.value)
        assert "after 3 tries" in str(exc.value) and "Error" not in str(exc.value)
        assert waits == [1.0, 2.0]


# --- against Verdaccio -----------------------------------------------------------------------


@dataclass
class Recorder:
    """httpx event hooks: the requests the client sent and the statuses it got (a seam, not a patch)."""

    requests: list[httpx.Request] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def client(self) -> httpx.Client:
        return httpx.Client(
            timeout=30,
            event_hooks={
                "request": [self.requests.append],
                "response": [lambda r: self.statuses.append(r.status_code)],
            },
        )

    def paths(self) -> list[str]:
        return [r.url.raw_path.decode() for r in self.requests]


@pytest.mark.verdaccio
def test_dist_tags_for_a_scoped_package(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.0.0", {"index.d.ts": "export {};"})
    verdaccio.publish_package(name, "2.0.0-beta.1", {"index.d.ts": "export {};"}, tag="next")
    rec = Recorder()
    with rec.client() as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        assert reg.dist_tags(name) == {"latest": "1.0.0", "next": "2.0.0-beta.1"}
        with pytest.raises(RegistryError, match="not found"):
            reg.dist_tags(unique_package("absent"))
    scope, base = name.split("/")
    assert rec.paths()[0] == f"/-/package/{scope}%2F{base}/dist-tags"


@pytest.mark.verdaccio
def test_packument_is_fetched_only_when_a_tag_moved_then_revalidated(
    verdaccio: Verdaccio, tmp_path: Path
) -> None:
    name = unique_package()
    verdaccio.publish_package(
        name, "1.0.0", {"a.d.ts": "1"}, package_json_extra={"engines": {"node": ">=18"}}
    )
    rec = Recorder()
    with rec.client() as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        info = reg.version_info(name, "1.0.0")
        assert info.integrity and info.integrity.startswith("sha512-")
        assert dict(info.engines) == {"node": ">=18"}
        assert rec.requests[-1].headers["accept"].startswith("application/vnd.npm.install-v1+json")
        assert "if-none-match" not in rec.requests[-1].headers

        # An unchanged hourly run: dist-tags only; the known version comes from the cache.
        before = len(rec.requests)
        tags = reg.dist_tags(name)
        assert reg.version_info(name, tags["latest"]) == info
        assert len(rec.requests) == before + 1 and "dist-tags" in rec.paths()[-1]

        # Asking for a version the cached packument lacks revalidates: Verdaccio sends ETags -> 304.
        with pytest.raises(RegistryError, match="not in the registry's packument"):
            reg.version_info(name, "9.9.9")
        assert "if-none-match" in rec.requests[-1].headers and rec.statuses[-1] == 304

        # A new release: the tag moved, the conditional fetch now gets the new packument.
        verdaccio.publish_package(name, "1.1.0", {"a.d.ts": "2"})
        assert reg.dist_tags(name)["latest"] == "1.1.0"
        newer = reg.version_info(name, "1.1.0")
        assert rec.statuses[-1] == 200 and newer.version == "1.1.0"
        assert newer.integrity != info.integrity

    # A fresh client with the same cache directory reuses it (the cache is on disk).
    rec2 = Recorder()
    with rec2.client() as client:
        reg2 = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        assert reg2.version_info(name, "1.1.0") == newer
        assert rec2.requests == [] and reg2.bytes_transferred == 0


@pytest.mark.verdaccio
def test_unchanged_run_transfers_almost_nothing(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.0.0", {"big.d.ts": "x" * 200_000})
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        reg.version_info(name, "1.0.0")
        start = reg.bytes_transferred
        assert start > 0
        reg.version_info(name, reg.dist_tags(name)["latest"])
        assert 0 < reg.bytes_transferred - start < 1024


@pytest.mark.verdaccio
def test_tarball_round_trip_and_bytes_counter(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package()
    verdaccio.publish_package(
        name, "1.0.0", {"resources/shared.d.ts": "export type ChatModel = 'm';"}
    )
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        info = reg.version_info(name, "1.0.0")
        before = reg.bytes_transferred
        files = reg.tarball(info)
    assert files.text("resources/shared.d.ts") == "export type ChatModel = 'm';"
    assert json.loads(files.text("package.json") or "{}")["name"] == name
    assert reg.bytes_transferred > before


@pytest.mark.verdaccio
def test_corrupt_cache_file_is_ignored(verdaccio: Verdaccio, tmp_path: Path) -> None:
    name = unique_package()
    verdaccio.publish_package(name, "1.0.0", {"a.js": "1"})
    with httpx.Client(timeout=30) as client:
        reg = NpmRegistry(verdaccio.url, client=client, cache_dir=tmp_path)
        reg.version_info(name, "1.0.0")
        (cache_file,) = tmp_path.glob("*.json")
        cache_file.write_text("{not json")
        assert reg.version_info(name, "1.0.0").version == "1.0.0"
        assert json.loads(cache_file.read_text())["registry"] == verdaccio.url


# --- a registry that sends no ETag / Last-Modified (like the one reachable here) -------------


class StaticRegistry(BaseHTTPRequestHandler):
    """Serves one package from `server.docs`; never sends validators; can be told to fail."""

    server: Any

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        if self.server.fail_with and self.server.fail_times != 0:
            self.server.fail_times -= 1
            self._send(self.server.fail_with, b"oops", "text/plain", self.server.retry_after)
            return
        body = self.server.docs.get(self.path)
        if body is None:
            self._send(404, b'{"error":"not found"}', "application/json")
        else:
            self._send(
                200,
                body,
                "application/octet-stream" if self.path.endswith(".tgz") else "application/json",
            )

    def _send(self, status: int, body: bytes, ctype: str, retry_after: str | None = None) -> None:
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def static_registry() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StaticRegistry)
    server.docs = {}  # type: ignore[attr-defined]
    server.seen = []  # type: ignore[attr-defined]
    server.fail_with = 0  # type: ignore[attr-defined]
    server.fail_times = -1  # type: ignore[attr-defined]  # -1: every request fails
    server.retry_after = None  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _serve_versions(server: Any, versions: list[str]) -> str:
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    packument: dict[str, Any] = {
        "name": "openai",
        "dist-tags": {"latest": versions[-1]},
        "versions": {},
    }
    for v in versions:
        tgz = package_tgz(
            "openai", v, {"resources/shared.d.ts": f"export type ChatModel = 'gpt-{v}';"}
        )
        server.docs[f"/openai/-/openai-{v}.tgz"] = tgz
        packument["versions"][v] = {
            "dist": {"tarball": f"{base}openai/-/openai-{v}.tgz", "integrity": sri_sha512(tgz)}
        }
    server.docs["/openai"] = json.dumps(packument).encode()
    server.docs["/-/package/openai/dist-tags"] = json.dumps(packument["dist-tags"]).encode()
    return base


def test_works_without_validators_and_caches_known_versions(
    static_registry: ThreadingHTTPServer, tmp_path: Path
) -> None:
    srv: Any = static_registry
    base = _serve_versions(srv, ["6.0.0"])
    with httpx.Client(timeout=10) as client:
        reg = NpmRegistry(base, client=client, cache_dir=tmp_path)
        info = reg.version_info("openai", reg.dist_tags("openai")["latest"])
        assert (
            reg.tarball(info).text("resources/shared.d.ts")
            == "export type ChatModel = 'gpt-6.0.0';"
        )
        srv.seen.clear()
        assert reg.version_info("openai", "6.0.0") == info
        assert srv.seen == []  # no validators, yet no refetch for a known version
        _serve_versions(srv, ["6.0.0", "6.1.0"])
        assert reg.version_info("openai", "6.1.0").version == "6.1.0"
        (path, headers) = srv.seen[-1]
        assert path == "/openai"
        assert not {"If-None-Match", "If-Modified-Since"} & set(headers)


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_registry_errors(
    static_registry: ThreadingHTTPServer, tmp_path: Path, status: int
) -> None:
    srv: Any = static_registry
    base = _serve_versions(srv, ["6.0.0"])
    srv.fail_with = status
    waits: list[float] = []
    with httpx.Client(timeout=10) as client:
        reg = NpmRegistry(base, client=client, cache_dir=tmp_path, sleep=waits.append)
        with pytest.raises(RegistryError, match=f"HTTP {status} \\(after 3 tries\\)"):
            reg.dist_tags("openai")
        with pytest.raises(RegistryError, match=f"HTTP {status}"):
            reg.version_info("openai", "6.0.0")
    # Each call was tried three times, 1 s then 2 s apart.
    assert [p for p, _ in srv.seen] == ["/-/package/openai/dist-tags"] * 3 + ["/openai"] * 3
    assert waits == [1.0, 2.0, 1.0, 2.0]


def test_a_transient_failure_is_retried_honouring_retry_after(
    static_registry: ThreadingHTTPServer, tmp_path: Path
) -> None:
    srv: Any = static_registry
    base = _serve_versions(srv, ["6.0.0"])
    srv.fail_with, srv.fail_times, srv.retry_after = 503, 1, "7"
    waits: list[float] = []
    with httpx.Client(timeout=10) as client:
        reg = NpmRegistry(base, client=client, cache_dir=tmp_path, sleep=waits.append)
        assert reg.dist_tags("openai") == {"latest": "6.0.0"}
        info = reg.version_info("openai", "6.0.0")
        srv.fail_with, srv.fail_times, srv.retry_after = 502, 2, "3600"
        files = reg.tarball(info)
    assert files.text("resources/shared.d.ts") == "export type ChatModel = 'gpt-6.0.0';"
    # Retry-After is honoured, but a long one is capped so an hourly run never hangs on it.
    assert waits == [7.0, 30.0, 30.0]
    assert [p for p, _ in srv.seen].count("/openai/-/openai-6.0.0.tgz") == 3


def test_non_json_answer_is_a_registry_error(
    static_registry: ThreadingHTTPServer, tmp_path: Path
) -> None:
    srv: Any = static_registry
    base = _serve_versions(srv, ["6.0.0"])
    srv.docs["/-/package/openai/dist-tags"] = b"<html>proxy login</html>"
    with httpx.Client(timeout=10) as client:
        reg = NpmRegistry(base, client=client, cache_dir=tmp_path)
        with pytest.raises(RegistryError, match="not JSON"):
            reg.dist_tags("openai")
