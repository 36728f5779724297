"""Certificates made by the openssl CLI for TLS tests: a CA, servers it signs, a client it signs."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
_LEAF_EXT = (
    "basicConstraints=CA:FALSE\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid\n"
    "subjectAltName={san}\n"
    "extendedKeyUsage={usage}\n"
)


@dataclass(frozen=True)
class TLSFiles:
    """PEM files in `folder`; every leaf is signed by `ca` except `self_signed`."""

    folder: Path
    ca: Path
    server: tuple[Path, Path]  # cert, key: 127.0.0.1 and localhost
    wrong_host: tuple[Path, Path]  # cert, key: only other.example
    self_signed: tuple[Path, Path]  # cert, key: 127.0.0.1, signed by nobody we trust
    client: tuple[Path, Path]  # cert, key: a client certificate (mTLS)
    client_combined: Path  # the client certificate and its key in one file

    def server_context(
        self, which: str = "server", require_client_cert: bool = False
    ) -> ssl.SSLContext:
        """A server-side context presenting `which` certificate, optionally demanding one back."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*getattr(self, which))
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cafile=str(self.ca))
        return ctx


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _leaf(
    folder: Path, name: str, san: str, usage: str, ca: tuple[Path, Path]
) -> tuple[Path, Path]:
    cert, key, csr, ext = (folder / f"{name}{s}" for s in (".pem", ".key", ".csr", ".ext"))
    ext.write_text(_LEAF_EXT.format(san=san, usage=usage))
    _openssl("req", *_KEY, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext),
    )  # fmt: skip
    return cert, key


def make_tls_files(folder: Path) -> TLSFiles:
    """Make a CA and the certificates it signs (needs the openssl CLI)."""
    if shutil.which("openssl") is None:
        raise RuntimeError("the openssl CLI is needed to make test certificates")
    ca = folder / "ca.pem", folder / "ca.key"
    _openssl(
        "req", "-x509", *_KEY, "-keyout", str(ca[1]), "-out", str(ca[0]), "-days", "2",
        "-subj", "/CN=driftgate test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    server = _leaf(folder, "server", "IP:127.0.0.1,DNS:localhost", "serverAuth", ca)
    wrong = _leaf(folder, "wrong", "DNS:other.example", "serverAuth", ca)
    client = _leaf(folder, "client", "DNS:driftgate-client", "clientAuth", ca)
    self_cert, self_key = folder / "self.pem", folder / "self.key"
    _openssl(
        "req", "-x509", *_KEY, "-keyout", str(self_key), "-out", str(self_cert), "-days", "2",
        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    )  # fmt: skip
    combined = folder / "client-combined.pem"
    combined.write_bytes(client[0].read_bytes() + client[1].read_bytes())
    return TLSFiles(folder, ca[0], server, wrong, (self_cert, self_key), client, combined)
