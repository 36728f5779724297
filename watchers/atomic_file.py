"""Replace a file in one step, so a reader (or a run killed mid-write) never sees half of it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to a temporary sibling of `path`, then rename it over `path`; OSError on failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Unique per process and call: two watchers sharing DRIFTGATE_HOME never write the same temp file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
