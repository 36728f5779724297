"""Sampling parameters across dialects: checked against the client's API, fitted to the backend's.

Each API accepts its own ranges, so a value one dialect accepts can be refused by the other:

| parameter      | Anthropic Messages        | OpenAI Chat Completions        |
|----------------|---------------------------|--------------------------------|
| temperature    | 0 to 1                    | 0 to 2 (Responses API too)     |
| top_p          | 0 to 1                    | 0 to 1 (Responses API too)     |
| top_k          | 0 or more (whole number)  | none (dropped, named)          |
| stop sequences | any number                | at most 4                      |
| n              | none (always 1)           | 1 to 128 (n > 1 is refused)    |
| penalties      | none (dropped, named)     | -2 to 2                        |

A value outside the *client's* API's range is refused with a 400 in the client's dialect (its own
API would have refused it too). A value the client's API accepts but the backend's does not is
moved into the backend's range and named in `x-driftgate-adjusted` ("temperature 1.5->1"):

- temperature is clamped, not scaled. Most requests use 0 to 1, which both APIs read alike;
  scaling (halving) would quietly change every one of them, while clamping changes only the
  values the backend would refuse, to the most random setting it has.
- stop sequences past the backend's count are left out (the first ones are kept): a stop
  sequence is a hint to end early, and the answer is still an answer without the last ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from driftgate.proxy.errors import Dialect, InvalidRequest
from driftgate.proxy.translate.ir import ChatRequest


@dataclass(frozen=True)
class Ranges:
    """The ranges one dialect's API accepts (None: no limit, or no such parameter)."""

    temperature: float
    top_p: float = 1.0
    max_stop: int | None = None


RANGES: dict[str, Ranges] = {
    "anthropic": Ranges(temperature=1.0),
    "openai": Ranges(temperature=2.0, max_stop=4),
    "responses": Ranges(temperature=2.0),  # the Responses API has no stop sequences
}
STOP_NAME = {"anthropic": "stop_sequences", "openai": "stop", "responses": "stop"}


def fit_sampling(req: ChatRequest, source: Dialect, target: Dialect) -> tuple[str, ...]:
    """Check `req` against `source`'s ranges (InvalidRequest), then fit it to `target`'s in place.

    Returns what was adjusted, e.g. ("temperature 1.5->1",), for `x-driftgate-adjusted`.
    """
    asked, fit = RANGES[source], RANGES[target]
    _check(req, asked)
    adjusted: list[str] = []
    if req.temperature is not None and req.temperature > fit.temperature:
        adjusted.append(f"temperature {req.temperature:g}->{fit.temperature:g}")
        req.temperature = fit.temperature
    if fit.max_stop is not None and len(req.stop) > fit.max_stop:
        adjusted.append(f"{STOP_NAME[source]} {len(req.stop)}->{fit.max_stop}")
        req.stop = req.stop[: fit.max_stop]
    return tuple(adjusted)


def _check(req: ChatRequest, asked: Ranges) -> None:
    if req.temperature is not None and not 0 <= req.temperature <= asked.temperature:
        raise InvalidRequest(
            f"temperature must be between 0 and {asked.temperature:g}, got {req.temperature:g}"
        )
    if req.top_p is not None and not 0 <= req.top_p <= asked.top_p:
        raise InvalidRequest(f"top_p must be between 0 and {asked.top_p:g}, got {req.top_p:g}")
    if req.top_k is not None and req.top_k < 0:
        raise InvalidRequest(f"top_k must be 0 or more, got {req.top_k}")
    if asked.max_stop is not None and len(req.stop) > asked.max_stop:
        raise InvalidRequest(f"stop takes at most {asked.max_stop} sequences, got {len(req.stop)}")
