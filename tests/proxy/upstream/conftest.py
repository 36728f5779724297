"""Shared fixtures for the upstream transports' tests."""

from __future__ import annotations

import shutil

import pytest

from tests.fakes.tls_files import TLSFiles, make_tls_files


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """A CA, servers and a client it signs, and a self-signed server (made by openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    return make_tls_files(tmp_path_factory.mktemp("tls"))
