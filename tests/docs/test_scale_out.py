"""docs/scale-out/compose.yaml: the services docs/scale-out.md names, on the ports and with the
credentials its examples use."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "scale-out.md"
COMPOSE = ROOT / "docs" / "scale-out" / "compose.yaml"
URL = re.compile(r"""(redis|postgres(?:ql)?)://[^\s"'`)<>]+""")


def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(doc, dict)
    return doc


def published(service: dict[str, Any], container_port: int) -> tuple[str, int]:
    """(host address, host port) the service publishes `container_port` on."""
    for entry in service.get("ports", []):
        host_ip, host_port, inner = str(entry).rsplit(":", 2)[-3:]
        if int(inner) == container_port:
            return host_ip, int(host_port)
    raise AssertionError(f"port {container_port} is not published: {service.get('ports')}")


def urls(scheme: str) -> list[str]:
    return [m.group(0) for m in URL.finditer(PAGE.read_text()) if m.group(1).startswith(scheme)]


def test_the_compose_file_runs_redis_and_postgres_with_health_checks_and_volumes() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "postgres"}
    for name, service in services.items():
        assert "healthcheck" in service, name
        assert service.get("volumes"), f"{name} keeps its data in a volume"
        for entry in service["ports"]:
            assert str(entry).startswith("127.0.0.1:"), f"{name} is published on loopback only"


def test_the_compose_redis_keeps_its_data_and_evicts_nothing() -> None:
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_pages_redis_urls_reach_the_compose_redis() -> None:
    host, port = published(compose()["services"]["redis"], 6379)
    found = urls("redis")
    assert found, "docs/scale-out.md names the Redis URL the compose file serves"
    for url in found:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port or 6379) == (host, port), url


def test_the_pages_postgres_urls_use_the_compose_credentials_and_port() -> None:
    service = compose()["services"]["postgres"]
    host, port = published(service, 5432)
    env = service["environment"]
    found = urls("postgres")
    assert found, "docs/scale-out.md names the PostgreSQL URL the compose file serves"
    for url in found:
        parts = urlsplit(url)
        assert (parts.hostname, parts.port or 5432) == (host, port), url
        assert parts.username == env["POSTGRES_USER"], url
        assert parts.password == env["POSTGRES_PASSWORD"], url
        assert parts.path.lstrip("/") == env["POSTGRES_DB"], url


def test_the_page_is_in_the_manual_and_on_the_front_page() -> None:
    assert "(scale-out.md)" in (ROOT / "docs" / "README.md").read_text()
    assert "(docs/scale-out.md)" in (ROOT / "README.md").read_text()
    assert "(scale-out/compose.yaml)" in PAGE.read_text()
