"""What the respond step hands to the record: how a streamed answer ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class StreamResult:
    """How a relayed stream ended."""

    usage: Any
    client_gone: bool
    upstream_error: str | None
    stopped: bool = False  # ended by the gateway's shutdown (its grace ran out)
