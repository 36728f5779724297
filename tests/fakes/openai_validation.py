"""The OpenAI API's request validation, for the mistakes a translation could make."""

from __future__ import annotations

from typing import Any

ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
KNOWN_PARAMS = frozenset(
    [
        "messages",
        "model",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)


class Invalid(Exception):
    """A request the real API would answer with 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _validate_messages(messages: Any) -> None:
    if messages is None:
        raise Invalid("Missing required parameter: 'messages'.", "messages")
    if not isinstance(messages, list) or not messages:
        raise Invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages"
        )
    open_calls: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise Invalid(
                f"Invalid value: '{role}'. Supported values are: "
                + ", ".join(f"'{r}'" for r in ROLES),
                f"messages[{i}].role",
            )
        if role != "tool" and open_calls:
            raise Invalid(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                "'tool_call_id'. The following tool_call_ids did not have response messages: "
                + ", ".join(sorted(open_calls)),
                "messages",
            )
        content = m.get("content")
        if isinstance(content, list):
            for j, part in enumerate(content):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in PART_TYPES:
                    raise Invalid(
                        f"Invalid value: '{kind}'. Supported values are: "
                        + ", ".join(f"'{t}'" for t in PART_TYPES),
                        f"messages[{i}].content[{j}].type",
                    )
                if kind == "image_url" and not (
                    isinstance(part.get("image_url"), dict) and part["image_url"].get("url")
                ):
                    raise Invalid(
                        "Missing required parameter: 'image_url.url'.",
                        f"messages[{i}].content[{j}].image_url.url",
                    )
                if kind == "text" and not isinstance(part.get("text"), str):
                    raise Invalid(
                        "Missing required parameter: 'text'.", f"messages[{i}].content[{j}].text"
                    )
        elif content is None and not (role == "assistant" and m.get("tool_calls")):
            raise Invalid(
                "Invalid value for 'content': expected a string, got null.",
                f"messages[{i}].content",
            )
        elif content is not None and not isinstance(content, str):
            raise Invalid("Invalid type for 'content'.", f"messages[{i}].content")
        if role == "tool":
            call_id = m.get("tool_call_id")
            if call_id not in open_calls:
                raise Invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            open_calls.discard(call_id)
        if role == "assistant":
            for k, call in enumerate(m.get("tool_calls") or []):
                fn = call.get("function") or {}
                if (
                    call.get("type") != "function"
                    or not call.get("id")
                    or not fn.get("name")
                    or not isinstance(fn.get("arguments"), str)
                ):
                    raise Invalid(
                        "Missing required parameter: 'id', 'type', 'function.name' or 'function.arguments'.",
                        f"messages[{i}].tool_calls[{k}]",
                    )
                open_calls.add(call["id"])


def validate_request(body: Any, strict_fields: bool) -> None:
    """Raise Invalid with the real API's wording for the mistakes translation could make."""
    if not isinstance(body, dict):
        raise Invalid("We could not parse the JSON body of your request.")
    if strict_fields:
        for key in body:
            if key not in KNOWN_PARAMS:
                raise Invalid(f"Unrecognized request argument supplied: {key}")
    if not body.get("model"):
        raise Invalid("you must provide a model parameter", "model")
    _validate_messages(body.get("messages"))
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") != "function" or not isinstance(tool.get("function"), dict):
            raise Invalid(
                f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function"
            )
        if not tool["function"].get("name"):
            raise Invalid(
                f"Missing required parameter: 'tools[{i}].function.name'.",
                f"tools[{i}].function.name",
            )
    choice = body.get("tool_choice")
    if (
        choice is not None
        and choice not in ("none", "auto", "required")
        and not (
            isinstance(choice, dict)
            and choice.get("type") == "function"
            and (choice.get("function") or {}).get("name")
        )
    ):
        raise Invalid("Invalid value for 'tool_choice'.", "tool_choice")
    for name, low, top in (
        ("temperature", 0.0, 2.0),
        ("top_p", 0.0, 1.0),
        ("presence_penalty", -2.0, 2.0),
        ("frequency_penalty", -2.0, 2.0),
    ):
        value = body.get(name)
        if value is not None and value > top:
            raise Invalid(
                f"Invalid '{name}': decimal above maximum value. Expected a value <= {top:g}, but got {value} instead.",
                name,
            )
        if value is not None and value < low:
            raise Invalid(
                f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but got {value} instead.",
                name,
            )
    n = body.get("n")
    if isinstance(n, int) and not 1 <= n <= 128:
        side, bound = ("above maximum", "<= 128") if n > 128 else ("below minimum", ">= 1")
        raise Invalid(
            f"Invalid 'n': integer {side} value. Expected a value {bound}, but got {n} instead.",
            "n",
        )
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 4:
        raise Invalid(
            f"Invalid 'stop': array too long. Expected an array with maximum length 4, but got an array with length {len(stop)} instead.",
            "stop",
        )
    if body.get("stream_options") is not None and not body.get("stream"):
        raise Invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
