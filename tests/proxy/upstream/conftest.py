"""Shared fixtures for the upstream transports' tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.fakes.tinyproxy import Tinyproxy, available, running_tinyproxy
from tests.fakes.tls_files import TLSFiles, make_tls_files


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA, servers and a client it signs, and a self-signed server (made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    """A real forward proxy on loopback, no credentials needed."""
    if not available():
        pytest.skip("needs tinyproxy (listed in .ci/debian-packages)")
    with running_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def tinyproxy_auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    """A real forward proxy on loopback that demands Basic credentials."""
    if not available():
        pytest.skip("needs tinyproxy (listed in .ci/debian-packages)")
    folder = tmp_path_factory.mktemp("tinyproxy-auth")
    with running_tinyproxy(folder, ("gateway", "pr0xy-s3cret")) as proxy:
        yield proxy
