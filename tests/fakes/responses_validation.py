"""The OpenAI Responses API's request validation, as far as a gateway could get it wrong."""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_validation import Invalid

KNOWN_PARAMS = frozenset(
    {"background", "conversation", "include", "input", "instructions", "max_output_tokens",
     "max_tool_calls", "metadata", "model", "parallel_tool_calls", "previous_response_id",
     "prompt", "prompt_cache_key", "prompt_cache_retention", "reasoning", "safety_identifier",
     "service_tier", "store", "stream", "stream_options", "temperature", "text", "tool_choice",
     "tools", "top_logprobs", "top_p", "truncation", "user", "context_management", "client_metadata"}
)  # fmt: skip
ROLES = ("user", "assistant", "system", "developer")
USER_PARTS = ("input_text", "input_image", "input_file")
ASSISTANT_PARTS = ("output_text", "refusal")
ITEM_TYPES = (
    "message", "function_call", "function_call_output", "custom_tool_call",
    "custom_tool_call_output", "reasoning", "item_reference", "web_search_call",
    "file_search_call", "computer_call", "computer_call_output", "local_shell_call",
    "local_shell_call_output", "mcp_call", "mcp_list_tools", "mcp_approval_request",
    "mcp_approval_response", "image_generation_call", "code_interpreter_call", "compaction",
)  # fmt: skip
TOOL_TYPES = (
    "function", "custom", "web_search", "web_search_preview", "file_search", "computer_use_preview",
    "mcp", "code_interpreter", "image_generation", "local_shell", "shell", "apply_patch", "namespace",
)  # fmt: skip
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _values(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def validate_responses_request(body: Any, history: list[dict[str, Any]] | None = None) -> None:
    """Raise Invalid as POST /v1/responses would; `history` is a resolved previous_response_id."""
    if not isinstance(body, dict):
        raise Invalid("Invalid body: expected an object.")
    for key in body:
        if key not in KNOWN_PARAMS:
            raise Invalid(f"Unknown parameter: '{key}'.", key)
    if not isinstance(body.get("model"), str):
        raise Invalid("Missing required parameter: 'model'.", "model")
    raw = body.get("input")
    if raw is not None and not isinstance(raw, str | list):
        raise Invalid("Invalid type for 'input': expected a string or an array.", "input")
    calls = {
        i["call_id"]
        for i in history or ()
        if i.get("type") in ("function_call", "custom_tool_call")
    }
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        _item(item, f"input[{i}]", calls)
    for i, tool in enumerate(body.get("tools") or []):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind not in TOOL_TYPES:
            raise Invalid(
                f"Invalid value: '{kind}'. Supported values are: {_values(TOOL_TYPES)}.",
                f"tools[{i}].type",
            )
        if kind in ("function", "custom") and not isinstance(tool.get("name"), str):
            raise Invalid("Missing required parameter: 'tools[0].name'.", f"tools[{i}].name")
        if kind == "function" and "function" in tool:
            raise Invalid(f"Unknown parameter: 'tools[{i}].function'.", f"tools[{i}].function")
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") not in (None, *EFFORTS):
        raise Invalid(f"Invalid value: '{reasoning.get('effort')}'. Supported values are: {_values(EFFORTS)}.",
                      "reasoning.effort")  # fmt: skip
    limit = body.get("max_output_tokens")
    if limit is not None and (not isinstance(limit, int) or limit < 16):
        raise Invalid(
            f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit} instead.",
            "max_output_tokens",
        )


def _item(item: Any, where: str, calls: set[str]) -> None:
    if not isinstance(item, dict):
        raise Invalid(f"Invalid type for '{where}': expected an object.", where)
    kind = item.get("type", "message")
    if kind not in ITEM_TYPES:
        raise Invalid(
            f"Invalid value: '{kind}'. Supported values are: {_values(ITEM_TYPES)}.",
            f"{where}.type",
        )
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise Invalid(
                f"Invalid value: '{role}'. Supported values are: {_values(ROLES)}.", f"{where}.role"
            )
        content = item.get("content")
        if isinstance(content, list):
            allowed = ASSISTANT_PARTS if role == "assistant" else USER_PARTS
            for j, part in enumerate(content):
                ptype = part.get("type") if isinstance(part, dict) else None
                if ptype not in allowed:
                    raise Invalid(f"Invalid value: '{ptype}'. Supported values are: {_values(allowed)}.",
                                  f"{where}.content[{j}].type")  # fmt: skip
        elif not isinstance(content, str):
            raise Invalid(f"Missing required parameter: '{where}.content'.", f"{where}.content")
    elif kind in ("function_call", "custom_tool_call"):
        for key in ("call_id", "name"):
            if not isinstance(item.get(key), str):
                raise Invalid(f"Missing required parameter: '{where}.{key}'.", f"{where}.{key}")
        calls.add(item["call_id"])
    elif kind in ("function_call_output", "custom_tool_call_output"):
        if item.get("call_id") not in calls:
            raise Invalid(
                f"No tool call found for function call output with call_id {item.get('call_id')}.",
                "input",
            )
    elif kind == "reasoning" and not isinstance(item.get("summary"), list):
        raise Invalid(f"Missing required parameter: '{where}.summary'.", f"{where}.summary")
