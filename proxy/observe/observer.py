"""Everything the gateway observes, wired once per app: records, metrics, live stream, stats.

The request path touches only `keeper` (one append per request) and `stats` (a few integer
updates per upstream attempt); the rest runs on the recorder's thread or when asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from driftgate.proxy.config import Config
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.keeper import RecordKeeper, flush_every, open_recorder
from driftgate.proxy.observe.keeper import log as request_log
from driftgate.proxy.observe.labels import ModelLabels
from driftgate.proxy.observe.live import LiveHub
from driftgate.proxy.observe.metrics import GatewayMetrics, Sources
from driftgate.proxy.observe.metrics_share import SharedTotals, metrics_dir
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.upstream_stats import UpstreamStats
from driftgate.proxy.templates.loader import TemplateSet

if TYPE_CHECKING:
    from driftgate.proxy.observe.otel import OtelSink
    from driftgate.proxy.observe.pg.writer import PgAnalytics

log = logging.getLogger("driftgate.observe")


class Observer:
    """One app's observability: built at start-up from the config, passed to the handlers."""

    def __init__(
        self,
        config: Config,
        templates: Callable[[], TemplateSet],
        cooldowns: Cooldowns,
        clock: Callable[[], float],
        recorder: Recorder | None = None,
    ) -> None:
        self.config = config
        owned = recorder is None
        analytics, metrics_on = config.analytics.enabled, config.metrics.enabled
        url = config.analytics.database_url if analytics else None
        # With PostgreSQL the recorder keeps no SQLite: it builds records and feeds the sinks,
        # one of which is the database's writer.
        self.database: PgAnalytics | None = _database(config, url) if url else None
        if recorder is None:
            recorder = open_recorder(
                config.home,
                persist=analytics and self.database is None,
                retention_days=config.analytics.retention_days or None,
            )
        self.recorder = recorder
        self.stats = UpstreamStats(clock)
        self.live = LiveHub()
        self.metrics: GatewayMetrics | None = None
        if metrics_on:
            sources = Sources(
                queue_depth=lambda: recorder.backlog,
                dropped=lambda: recorder.dropped,
                database=self.database.state if self.database is not None else None,
                upstream_errors=lambda: dict(self.stats.errors),
                cooldowns_started=lambda: dict(cooldowns.started),
                cooling=cooldowns.all_cooling,
                stream_subscribers=lambda: self.live.subscribers,
            )
            self.metrics = GatewayMetrics(ModelLabels(config, templates), sources)
            recorder.add_sink(self.metrics.consume)
        if self.database is not None:
            recorder.add_sink(self.database.consume)
        self.shared: SharedTotals | None = None
        if self.metrics is not None and config.worker_processes > 1:
            self.shared = SharedTotals(metrics_dir(config.home), self.metrics.snapshot)
            self.metrics.peers = self.shared.others
            recorder.add_sink(self.shared.sink)
        # With N workers the live stream reads every worker's records back from the usage file
        # they all write (live_tail.py); one worker's own records would be a part of the traffic.
        self.live_file = recorder.path if config.worker_processes > 1 else None
        if analytics:
            recorder.add_sink(self.live.consume)
        self.otel: OtelSink | None = None
        if config.otel.endpoint:
            self.otel = _otel_sink(config, config.otel.endpoint)
            recorder.add_sink(self.otel.consume)
        self.keeper = RecordKeeper(
            recorder,
            owned=owned,
            clock=clock,
            # With analytics and metrics off, records are still built for the request log lines.
            # The spend guard settles each reservation from its request's record.
            enabled=analytics
            or metrics_on
            or config.guard.enabled
            or self.otel is not None
            or request_log.isEnabledFor(logging.INFO),
            log_json=config.log_format == "json",
            every=flush_every(config.worker_processes),
        )

    def start(self) -> list[asyncio.Task[None]]:
        """At start-up: bind the live stream to the loop, start the record batcher."""
        self.live.bind(asyncio.get_running_loop())
        tasks = [asyncio.create_task(self.keeper.run())]
        if self.shared is not None:
            tasks.append(asyncio.create_task(self.shared.keep_written()))
        return tasks

    def shutdown(self) -> None:
        """Before connections close: end the live streams."""
        self.live.close()

    def close(self) -> None:
        """After the last request: flush the records (and stop an owned recorder), export spans."""
        self.keeper.close()
        if self.database is not None:
            self.database.close()
        if self.shared is not None:
            self.shared.write()  # this worker's last totals stay in the sum
        if self.otel is not None:
            self.otel.close()


def _database(config: Config, url: str) -> PgAnalytics:
    """The PostgreSQL writer, connected and migrated (psycopg is imported here only)."""
    try:
        from driftgate.proxy.observe.pg.connect import DatabaseRefused
        from driftgate.proxy.observe.pg.schema import SchemaTooNew
        from driftgate.proxy.observe.pg.writer import PgAnalytics
    except ImportError as exc:
        raise ConfigError(
            f"[analytics] database_url is set but psycopg is not installed ({exc.name}): "
            "pip install 'driftgate[postgres]', or remove [analytics] database_url"
        ) from None
    database = PgAnalytics(
        url,
        retention_days=config.analytics.retention_days or None,
        limit=config.analytics.database_buffer,
        timeout=config.analytics.database_timeout_seconds,
    )
    try:
        database.start()
    except DatabaseRefused as exc:
        raise ConfigError(
            f"[analytics] database_url {database.shown}: the database refused the connection "
            f"({exc}); check the user, password and database name in the URL"
        ) from None
    except SchemaTooNew as exc:
        raise ConfigError(f"[analytics] database_url {database.shown}: {exc}") from None
    return database


def _otel_sink(config: Config, endpoint: str) -> OtelSink:
    """The OTLP exporter; imported here only, so that with tracing off nothing of it loads."""
    try:
        from driftgate.proxy.observe.otel import OtelSink
    except ImportError as exc:
        raise ConfigError(
            f"[otel] endpoint is set but OpenTelemetry is not installed ({exc.name}): "
            "pip install 'driftgate[otel]', or remove [otel] endpoint"
        ) from None
    return OtelSink(endpoint, config.otel.service_name, config.backends)
