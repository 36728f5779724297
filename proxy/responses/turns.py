"""What every conversation store shares: a stored turn, an expanded request, what a request refers
to, what a store loaded for it, and the real API's 400s for what cannot be found."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import orjson

from driftgate.proxy.errors import GatewayError, InvalidRequest

MAX_CHAIN = 1_000  # turns walked back from one previous_response_id


@dataclass(slots=True)
class Turn:
    """One stored response: the response before it, and this turn's input and output items."""

    previous: str | None
    created: float
    items: list[dict[str, Any]]


@dataclass(slots=True)
class Expanded:
    """A Responses request with its conversation written out, and what storing it needs."""

    body: dict[str, Any]  # input: the whole conversation; no previous_response_id
    previous: str | None
    own: list[dict[str, Any]]  # this request's own input items (references resolved)
    store: bool
    asked: float = 0.0  # when the request arrived: a stored turn's age counts from here


@dataclass(slots=True)
class Output:
    """What a stored turn keeps of a Response object: its id, its output items, and the items'
    JSON as the client was sent it (a streamed answer's encoder wrote each once already)."""

    response_id: str
    items: list[dict[str, Any]]
    raw: list[bytes] | None = None  # each item's bytes, equal to orjson's of `items`


# A finished Response object (a dict, as a whole answer is rendered) or what a turn needs of it.
Answered: TypeAlias = "dict[str, Any] | Output"


def output_of(response: Answered) -> Output | None:
    """The id and output items of a Response object (None without a string id)."""
    if isinstance(response, Output):
        return response
    response_id = response.get("id")
    if not isinstance(response_id, str):
        return None
    return Output(response_id, [i for i in response.get("output") or () if isinstance(i, dict)])


def items_blob(own: list[dict[str, Any]], output: Output) -> bytes:
    """The JSON array of a turn's items (its input, then its output), as orjson writes it; an
    output whose bytes were written already is joined, not serialised again."""
    raw = output.raw
    if raw is None:
        return orjson.dumps(own + output.items)
    if not raw:
        return orjson.dumps(own)
    if not own:
        return b"[" + b",".join(raw) + b"]"
    return b"".join((orjson.dumps(own)[:-1], b",", b",".join(raw), b"]"))


@dataclass(slots=True)
class Loaded:
    """What a shared store read for one request before it is expanded (off the request's loop
    turn): the turns of its chain and the items it references, or why the store was not read."""

    turns: dict[str, Turn] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    unreachable: str | None = None  # the store could not be asked: a miss says so


class StoreUnavailable(GatewayError):
    """The shared conversation store (Redis) cannot be reached and [state] fail = "closed"."""

    status = 503
    anthropic_type = "api_error"
    openai_type = "server_error"
    openai_code = "response_store_unavailable"


class ConversationStore(Protocol):
    """Where the gateway keeps Responses conversations for backends that keep none."""

    shared: bool  # other processes read what this one files: file before the answer ends

    async def load(self, body: dict[str, Any]) -> Loaded | None:
        """Read what `body` refers to that only a shared store may hold (None: nothing to read)."""
        ...

    def expand(self, body: dict[str, Any], loaded: Loaded | None = None) -> Expanded:
        """`body` with previous_response_id's conversation and item references written out."""
        ...

    def remember(self, expanded: Expanded, response: Answered) -> None:
        """Keep this turn (after the answer), unless the client asked not to store it."""
        ...

    def file(self, expanded: Expanded, response: Answered) -> Awaitable[None]:
        """Keep this turn where every process sees it (before the answer's end reaches the client)."""
        ...

    def health(self) -> dict[str, Any] | None:
        """The shared store's state for /health (None for the embedded one)."""
        ...

    async def aclose(self) -> None:
        """Write what is pending and release the store."""
        ...


def not_found(response_id: str, unreachable: str | None = None) -> InvalidRequest:
    """The 400 OpenAI gives for an unknown previous_response_id."""
    why = f" (the conversation store could not be read: {unreachable})" if unreachable else ""
    return InvalidRequest(
        f"Previous response with id '{response_id}' not found.{why}",
        code="previous_response_not_found",
        param="previous_response_id",
    )


def item_not_found(item_id: str, unreachable: str | None = None) -> InvalidRequest:
    """The 400 for an item_reference to an item nobody stored."""
    why = f" (the conversation store could not be read: {unreachable})" if unreachable else ""
    return InvalidRequest(f"Item with id '{item_id}' not found.{why}", param="input")


def item_in(items: list[Any], item_id: str) -> dict[str, Any] | None:
    """The item of a turn with this id (the last, should a turn hold it twice), or None."""
    for item in reversed(items):
        if isinstance(item, dict) and item.get("id") == item_id:
            return item
    return None


def input_items(raw: Any) -> list[dict[str, Any]]:
    """A request's `input` as a list of items (a string is one user message)."""
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if isinstance(raw, list):
        return [i for i in raw if isinstance(i, dict)]
    return []


def previous_of(body: dict[str, Any]) -> str | None:
    """The request's previous_response_id (a 400 when it is not a string)."""
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest("previous_response_id must be a string", param="previous_response_id")
    return previous or None


def referenced(body: dict[str, Any]) -> list[str]:
    """The ids of the items `body` refers to by item_reference."""
    raw = body.get("input")
    if not isinstance(raw, list):
        return []
    return [
        i["id"]
        for i in raw
        if isinstance(i, dict)
        and i.get("type") == "item_reference"
        and isinstance(i.get("id"), str)
    ]
