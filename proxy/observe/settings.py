"""The config tables this package reads: [analytics], [metrics], [otel] (declared for the
strict loader, see proxy/config_schema.py; `Config` holds one field per table)."""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.proxy.config_schema import setting
from driftgate.proxy.observe.pg.url import url_problem

LOG_FORMATS = ("text", "json")


def _otlp_url_problem(value: str | None) -> str | None:
    if value is None or value.startswith(("http://", "https://")):
        return None
    return 'must be an http(s) URL such as "http://127.0.0.1:4318/v1/traces"'


@dataclass(frozen=True)
class AnalyticsConfig:
    """[analytics]: the per-request records, in $DRIFTGATE_HOME/usage.sqlite3 or PostgreSQL."""

    enabled: bool = setting(True, "keep records; /analytics and /analytics/stream")
    retention_days: float = setting(
        90.0, "days records are kept (0: forever); older ones are deleted hourly", min=0
    )
    database_url: str | None = setting(
        None,
        "PostgreSQL for the records, shared by every gateway, e.g. "
        "postgresql://user:password@host:5432/dbname (unset: SQLite in DRIFTGATE_HOME; "
        "needs `pip install 'driftgate[postgres]'`)",
        env="DRIFTGATE_ANALYTICS_DATABASE_URL",
        check=url_problem,
        secret=True,
    )
    database_buffer: int = setting(
        100_000,
        "records held in memory while PostgreSQL is down or behind; past that they are dropped "
        "and counted (driftgate_analytics_db_dropped)",
        min=1,
    )
    database_timeout_seconds: float = setting(
        10.0,
        "seconds PostgreSQL may take to accept a connection or answer a statement; past that "
        "the writer counts it as down (records wait in the buffer) and /analytics answers 503",
        min=2,
    )


@dataclass(frozen=True)
class MetricsConfig:
    """[metrics]: GET /metrics in the Prometheus text format."""

    enabled: bool = setting(True, "serve GET /metrics")


@dataclass(frozen=True)
class OtelConfig:
    """[otel]: OpenTelemetry spans per request over OTLP/HTTP (needs `pip install driftgate[otel]`)."""

    endpoint: str | None = setting(
        None,
        "OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces (unset: no tracing)",
        check=_otlp_url_problem,
    )
    service_name: str = setting("driftgate", "the spans' service.name")
