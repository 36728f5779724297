"""What `driftgate top` knows about the gateway: the last answers of its endpoints, the live hits."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

HITS_KEPT = 500  # the live list keeps the newest requests; older ones scroll out
WINDOWS = ("15m", "60m", "24h", "7d")
RATELIMIT_FIELDS = (
    "rl_requests_limit",
    "rl_requests_remaining",
    "rl_tokens_limit",
    "rl_tokens_remaining",
    "rl_reset_s",
    "retry_after_s",
)


@dataclass
class Hit:
    """One request record from the live stream (metadata only) and its row number."""

    seq: int
    doc: dict[str, Any]


@dataclass
class TopState:
    """The view's model: updated by the pollers, read by the views."""

    url: str
    window: str = "60m"
    reachable: bool | None = None  # None: not asked yet
    problem: str | None = None  # why the gateway is not reachable (or refuses us)
    down_since: float | None = None
    health: dict[str, Any] | None = None
    analytics: dict[str, Any] | None = None
    analytics_problem: str | None = None  # e.g. analytics turned off in the gateway's config
    streaming: bool = False
    hits: deque[Hit] = field(default_factory=lambda: deque(maxlen=HITS_KEPT))
    seen: int = 0  # records received since start
    ratelimits: dict[str, dict[str, Any]] = field(default_factory=dict)  # latest per backend
    probes: dict[str, dict[str, Any]] = field(default_factory=dict)  # last probe per backend
    probed_at: float | None = None

    def took_health(self, doc: dict[str, Any], now: float) -> None:
        """A /health answer; the probe results in one (?probe=1) are kept until the next probe."""
        self.health = doc
        probes = {str(b.get("name")): b["probe"] for b in doc.get("backends", []) if "probe" in b}
        if probes:
            self.probes, self.probed_at = probes, now

    def answered(self) -> None:
        """The gateway answered a request."""
        self.reachable = True
        self.problem = None
        self.down_since = None

    def went_away(self, problem: str, now: float) -> None:
        """A request found no gateway; keep what was seen, say since when it is gone."""
        if self.reachable is not False:
            self.down_since = now
        self.reachable = False
        self.problem = problem
        self.streaming = False

    def add_record(self, doc: dict[str, Any]) -> Hit:
        """A record from the live stream; the newest rate-limit headers of its backend kept."""
        self.seen += 1
        hit = Hit(self.seen, doc)
        self.hits.append(hit)
        limits = {k: doc.get(k) for k in RATELIMIT_FIELDS}
        if any(v is not None for v in limits.values()):
            limits["model"] = doc.get("model")
            limits["ts"] = doc.get("ts")
            self.ratelimits[str(doc.get("backend", "?"))] = limits
        return hit

    def hit(self, seq: int) -> Hit | None:
        """A kept hit by its number."""
        for hit in self.hits:
            if hit.seq == seq:
                return hit
        return None

    def next_window(self) -> str:
        """Cycle the analytics window (15m, 60m, 24h, 7d)."""
        index = WINDOWS.index(self.window) if self.window in WINDOWS else -1
        self.window = WINDOWS[(index + 1) % len(WINDOWS)]
        return self.window

    @property
    def guard(self) -> dict[str, Any]:
        """The guard's state from /health ({"enabled": False} when it has none)."""
        guard = (self.health or {}).get("guard")
        return guard if isinstance(guard, dict) else {"enabled": False}
