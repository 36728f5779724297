"""Plain-text requests built straight into the target dialect's body, without the IR.

Most translated requests are a conversation of plain strings with a few scalar settings. For
those, parsing into ChatRequest and rendering it again is most of the work; each builder here
writes the same body the IR path would (tests compare the two on generated requests) and
answers None for anything else: a field, role, block or value it does not handle, an unknown
field to be named in x-driftgate-dropped, a value the IR path would refuse or adjust. None
sends the request through the IR path, which decides all of that as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from driftgate.proxy.translate.anthropic_render import DEFAULT_MAX_TOKENS

# (body, upstream model, stream, mid-conversation system kept in place) -> body, or None
Builder = Callable[[dict[str, Any], str, bool, bool], dict[str, Any] | None]

# The fields each builder reads; `model` is the route's, `stream` the intake's decision. A
# field the IR parser reads and the target leaves out (stream_options, a Responses request's
# store or metadata) is in too.
_CHAT_FIELDS = frozenset(
    {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
     "stream", "stream_options", "user"}
)  # fmt: skip
_ANTHROPIC_FIELDS = frozenset(
    {"model", "messages", "system", "max_tokens", "temperature", "top_p", "stream"}
)
_RESPONSES_FIELDS = frozenset(
    {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream",
     "stream_options", "user", "safety_identifier", "store", "metadata", "previous_response_id",
     "include", "truncation"}
)  # fmt: skip
_ITEM_KEYS = frozenset({"type", "role", "content"})


def _sampling(t: Any, p: Any, temperature_max: float) -> bool:
    """Whether temperature `t` and top_p `p`, when given, are numbers both dialects take unchanged."""
    if t is not None and (
        (type(t) is not float and type(t) is not int) or not 0 <= t <= temperature_max
    ):
        return False
    return p is None or ((type(p) is float or type(p) is int) and 0 <= p <= 1)


def _anthropic_body(
    model: str,
    max_tokens: Any,
    system: list[str],
    messages: list[dict[str, Any]],
    t: Any,
    p: Any,
    stream: bool,
    user: Any,
) -> dict[str, Any] | None:
    """An Anthropic body in anthropic_render's key order, or None for a max_tokens to refuse."""
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    elif type(max_tokens) is not int:
        return None
    out: dict[str, Any] = {"model": model, "max_tokens": max_tokens}
    if system:
        out["system"] = (
            system[0] if len(system) == 1 else [{"type": "text", "text": t} for t in system]
        )
    out["messages"] = messages
    if t is not None:
        out["temperature"] = t
    if p is not None:
        out["top_p"] = p
    if stream:
        out["stream"] = True
    if user:
        out["metadata"] = {"user_id": user}
    return out


def _join(last: dict[str, Any], text: str) -> None:
    """Join a text to the previous Anthropic turn of the same role (one turn, several blocks)."""
    content = last["content"]
    if type(content) is str:
        last["content"] = [{"type": "text", "text": content}, {"type": "text", "text": text}]
    else:
        content.append({"type": "text", "text": text})


def chat_to_anthropic(
    body: dict[str, Any], model: str, stream: bool, in_place: bool
) -> dict[str, Any] | None:
    """A Chat Completions request of string messages as an Anthropic Messages body."""
    if not _CHAT_FIELDS.issuperset(body):
        return None
    get = body.get
    messages, user, t, p = get("messages"), get("user"), get("temperature"), get("top_p")
    if type(messages) is not list or (user is not None and type(user) is not str):
        return None
    if (t is not None or p is not None) and not _sampling(t, p, 1.0):
        return None
    system: list[str] = []
    out: list[dict[str, Any]] = []
    started = False  # a system message before any other turn is the system prompt
    for m in messages:
        if type(m) is not dict or len(m) != 2:
            return None
        role, content = m.get("role"), m.get("content")
        if type(content) is not str:
            return None
        if role == "user" or (role == "assistant" and content):
            started = True
            if out and out[-1]["role"] == role:
                _join(out[-1], content)
            else:
                out.append({"role": role, "content": content})
        elif role == "system" or role == "developer":
            if not started or not in_place:
                system.append(content)
            else:
                out.append({"role": "system", "content": content})
        else:
            return None  # an empty assistant turn, another role
    max_tokens = get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = get("max_tokens")
    return _anthropic_body(model, max_tokens, system, out, t, p, stream, user)


def anthropic_to_chat(
    body: dict[str, Any], model: str, stream: bool, in_place: bool
) -> dict[str, Any] | None:
    """An Anthropic Messages request of string turns and a string system prompt as a Chat body."""
    if not _ANTHROPIC_FIELDS.issuperset(body):
        return None
    get = body.get
    messages, system, t, p = get("messages"), get("system"), get("temperature"), get("top_p")
    if type(messages) is not list or (system is not None and type(system) is not str):
        return None
    if (t is not None or p is not None) and not _sampling(t, p, 1.0):
        return None
    head: list[str] = [system] if system else []
    out: list[dict[str, Any]] = []
    for m in messages:
        if type(m) is not dict or len(m) != 2:
            return None
        role, content = m.get("role"), m.get("content")
        if type(content) is not str:
            return None
        if role == "user" or role == "assistant":
            out.append({"role": role, "content": content})
        elif role == "system":
            if not content:
                continue  # an empty system turn carries nothing: the IR path drops it too
            if in_place:
                out.append({"role": "system", "content": content})
            else:
                head.append(content)
        else:
            return None
    if head:
        first = head[0] if len(head) == 1 else [{"type": "text", "text": t} for t in head]
        out.insert(0, {"role": "system", "content": first})
    result: dict[str, Any] = {"model": model, "messages": out}
    max_tokens = get("max_tokens")
    if max_tokens is not None:
        if type(max_tokens) is not int:
            return None
        result["max_tokens"] = max_tokens
    if t is not None:
        result["temperature"] = t
    if p is not None:
        result["top_p"] = p
    if stream:
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    return result


def _responses_user(body: dict[str, Any]) -> tuple[bool, Any]:
    """(whether the request fits, its user: `user`, else `safety_identifier`, when a string)."""
    user = body.get("user") or body.get("safety_identifier")
    return user is None or type(user) is str, user


def _responses_input(body: dict[str, Any]) -> list[str] | None:
    """The user texts of a Responses input of plain user messages, or None for anything else."""
    raw = body.get("input")
    if type(raw) is str:
        return [raw]
    if type(raw) is not list or not raw:
        return None
    texts = []
    for item in raw:
        if type(item) is not dict or item.get("role") != "user":
            return None
        content = item.get("content")
        if type(content) is not str or not content or item.get("type", "message") != "message":
            return None
        if not _ITEM_KEYS.issuperset(item):
            return None
        texts.append(content)
    return texts


def _instructions(body: dict[str, Any]) -> tuple[bool, list[str]]:
    """(whether the request fits, the system prompt's texts)."""
    instructions = body.get("instructions")
    if instructions is None:
        return True, []
    if type(instructions) is not str:
        return False, []
    return True, [instructions] if instructions else []


def responses_to_anthropic(
    body: dict[str, Any], model: str, stream: bool, in_place: bool
) -> dict[str, Any] | None:
    """A Responses request of user text (a string or user messages as strings) as an Anthropic body."""
    if not _RESPONSES_FIELDS.issuperset(body):
        return None
    texts = _responses_input(body)
    fits, user = _responses_user(body)
    fits_system, system = _instructions(body)
    t, p = body.get("temperature"), body.get("top_p")
    if texts is None or not fits or not fits_system or not _sampling(t, p, 1.0):
        return None
    if len(texts) == 1:
        messages: list[dict[str, Any]] = [{"role": "user", "content": texts[0]}]
    else:  # consecutive user messages are one turn
        blocks = [{"type": "text", "text": t} for t in texts]
        messages = [{"role": "user", "content": blocks}]
    return _anthropic_body(
        model, body.get("max_output_tokens"), system, messages, t, p, stream, user
    )


def responses_to_chat(
    body: dict[str, Any], model: str, stream: bool, in_place: bool
) -> dict[str, Any] | None:
    """A Responses request of user text as a Chat Completions body (a backend without Responses)."""
    if not _RESPONSES_FIELDS.issuperset(body):
        return None
    texts = _responses_input(body)
    fits, user = _responses_user(body)
    fits_system, system = _instructions(body)
    t, p = body.get("temperature"), body.get("top_p")
    if texts is None or not fits or not fits_system or not _sampling(t, p, 2.0):
        return None
    messages: list[dict[str, Any]] = [{"role": "system", "content": system[0]}] if system else []
    if len(texts) == 1:
        messages.append({"role": "user", "content": texts[0]})
    else:  # consecutive user messages are one turn
        messages.append({"role": "user", "content": [{"type": "text", "text": t} for t in texts]})
    result: dict[str, Any] = {"model": model, "messages": messages}
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None:
        if type(max_tokens) is not int:
            return None
        result["max_tokens"] = max_tokens
    if t is not None:
        result["temperature"] = t
    if p is not None:
        result["top_p"] = p
    if stream:
        result["stream"] = True
        result["stream_options"] = {"include_usage": True}
    if user:
        result["user"] = user
    return result


# (client dialect, upstream dialect) -> its builder
BUILDERS: dict[tuple[str, str], Builder] = {
    ("openai", "anthropic"): chat_to_anthropic,
    ("anthropic", "openai"): anthropic_to_chat,
    ("responses", "anthropic"): responses_to_anthropic,
    ("responses", "openai"): responses_to_chat,
}
