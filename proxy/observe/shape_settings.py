"""[shapes]: the gateway's shape log (read by the gateway and by `driftgate watch shapes`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from driftgate.proxy.config_schema import setting

SHAPES_DB = "shapes.sqlite3"


@dataclass(frozen=True)
class ShapeSettings:
    """[shapes]: what live clients send, as shapes with no content and no secrets."""

    enabled: bool = setting(True, "record each request's shape (no content, no secrets)")
    path: Path | None = setting(None, "the shape log's SQLite file (default: HOME/shapes.sqlite3)")
    max_shapes: int = setting(10_000, "distinct shapes kept; the least recently seen go first",
                              min=10)  # fmt: skip

    def file(self, home: Path) -> Path:
        """Where the shape log lives under `home` unless `path` says otherwise."""
        return self.path if self.path is not None else home / SHAPES_DB
