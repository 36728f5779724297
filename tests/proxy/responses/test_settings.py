"""[responses]: the response store's TTL and bounds are config keys, checked at start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from driftgate.proxy.config import Config, load_config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.responses.settings import ResponsesSettings


def load(tmp_path: Path, toml: str) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(toml, encoding="utf-8")
    return load_config({"DRIFTGATE_HOME": str(tmp_path)}, path)


def test_the_defaults_are_openais_thirty_days_and_the_old_bounds(tmp_path: Path) -> None:
    assert load(tmp_path, "").responses == ResponsesSettings(
        store_ttl_seconds=30 * 24 * 3600.0, store_max_items=20_000, store_max_bytes=256 * 1024**2
    )


def test_the_keys_are_read(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        "[responses]\nstore_ttl_seconds = 3600\nstore_max_items = 500\n"
        "store_max_bytes = 10_000_000\n",
    )
    assert cfg.responses == ResponsesSettings(3600.0, 500, 10_000_000)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("store_ttl_seconds = 0", "[responses] store_ttl_seconds: must be at least 60, got 0"),
        ("store_ttl_seconds = 4e7", "[responses] store_ttl_seconds: must be at most"),
        ("store_max_items = 0", "[responses] store_max_items: must be at least 1, got 0"),
        ("store_max_items = 1.5", "[responses] store_max_items: must be a whole number, got 1.5"),
        ("store_max_bytes = 100", "[responses] store_max_bytes: must be at least 4096, got 100"),
        ("store_ttl = 60", "[responses] store_ttl: unknown key; did you mean `store_ttl_seconds`?"),
    ],
)
def test_out_of_range_values_are_refused_at_start_up(
    tmp_path: Path, toml: str, needle: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        load(tmp_path, f"[responses]\n{toml}\n")
    assert needle in str(exc.value)
