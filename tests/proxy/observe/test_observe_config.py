"""The [analytics], [metrics] and [otel] tables and [gateway] log_format."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError


def _load(tmp_path: Path, toml: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(toml)
    return load_config(env={"DRIFTGATE_HOME": str(tmp_path)}, path=path)


def test_defaults_keep_analytics_and_metrics_on_and_tracing_off(tmp_path: Path) -> None:
    config = load_config(env={"DRIFTGATE_HOME": str(tmp_path)})
    assert config.analytics.enabled and config.analytics.retention_days == 90
    assert config.metrics.enabled
    assert config.otel.endpoint is None
    assert config.log_format == "text"


def test_every_key_is_read(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        """
[gateway]
log_format = "json"

[analytics]
enabled = false
retention_days = 7

[metrics]
enabled = false

[otel]
endpoint = "http://127.0.0.1:4318/v1/traces"
service_name = "gateway-a"
""",
    )
    assert config.log_format == "json"
    assert not config.analytics.enabled and config.analytics.retention_days == 7
    assert not config.metrics.enabled
    assert config.otel.endpoint == "http://127.0.0.1:4318/v1/traces"
    assert config.otel.service_name == "gateway-a"


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[gateway]\nlog_format = "xml"\n', '[gateway] log_format: must be one of "text", "json"'),
        ("[analytics]\nretention_days = -1\n", "[analytics] retention_days: must be at least 0"),
        ('[analytics]\nenabled = "yes"\n', "[analytics] enabled: must be true or false"),
        ("[metrics]\nenabled = 1\n", "[metrics] enabled: must be true or false"),
        ('[otel]\nendpoint = "localhost:4318"\n', "[otel] endpoint: must be an http(s) URL"),
        ('analytics = "on"\n', "[analytics]: must be a table"),
        ("[analytics]\nretension_days = 3\n", "did you mean `retention_days`?"),
        ("[metric]\nenabled = true\n", "did you mean `[metrics]`?"),
    ],
)
def test_mistakes_are_refused_with_a_sentence(tmp_path: Path, toml: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, toml)
    assert needle in str(info.value)
