"""The Anthropic API's request validation, for the mistakes a translation could make."""

from __future__ import annotations

from typing import Any

BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
)


class Invalid(Exception):
    """A request the real API would answer with 400 invalid_request_error."""

    def __init__(self, message: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.error_code = error_code  # the API's `error.details.error_code`, when it sends one


def _validate_block(block: Any, where: str) -> None:
    if not isinstance(block, dict):
        raise Invalid(f"{where}: Input should be a valid dictionary")
    kind = block.get("type")
    if kind not in BLOCK_TYPES:
        raise Invalid(
            f"{where}.type: Input tag '{kind}' found using 'type' does not match any of the expected tags: "
            + ", ".join(f"'{t}'" for t in BLOCK_TYPES)
        )
    if kind == "text" and not isinstance(block.get("text"), str):
        raise Invalid(f"{where}.text: Field required")
    if kind == "image":
        src = block.get("source")
        if not isinstance(src, dict) or src.get("type") not in ("base64", "url", "file"):
            raise Invalid(
                f"{where}.source: Input tag found using 'type' does not match 'base64', 'url', 'file'"
            )
        if src["type"] == "base64" and not (src.get("media_type") and src.get("data")):
            raise Invalid(f"{where}.source.media_type: Field required")
        if src["type"] == "url" and not src.get("url"):
            raise Invalid(f"{where}.source.url: Field required")
    if kind == "tool_use" and not (
        block.get("id") and block.get("name") and isinstance(block.get("input"), dict)
    ):
        raise Invalid(f"{where}: tool_use blocks need id, name and an object input")
    if kind == "tool_result" and not block.get("tool_use_id"):
        raise Invalid(f"{where}.tool_use_id: Field required")


def _validate_system_message(m: dict[str, Any], i: int, accepted: bool) -> None:
    """A mid-conversation system message (SystemMessageParam): text only, on models that take it."""
    if not accepted:
        raise Invalid(
            f'messages.{i}.role: Unexpected role "system". This model accepts a top-level '
            '`system` parameter, not "system" as an input message role.',
            "mid_conversation_system_not_supported",
        )
    if i == 0:
        raise Invalid(
            "messages.0.role: a system message cannot open the conversation; "
            "use the top-level `system` parameter"
        )
    content = m.get("content")
    if isinstance(content, str):
        if not content:
            raise Invalid(f"messages.{i}.content: system messages must have non-empty content")
        return
    if not isinstance(content, list) or not content:
        raise Invalid(
            f"messages.{i}.content: Input should be a valid string or list of text blocks"
        )
    for j, block in enumerate(content):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise Invalid(f"messages.{i}.content.{j}.type: system messages hold text blocks only")
        _validate_block(block, f"messages.{i}.content.{j}")


def _validate_messages(messages: Any, mid_conversation_system: bool) -> None:
    if not isinstance(messages, list):
        raise Invalid("messages: Field required")
    if not messages:
        raise Invalid("messages: at least one message is required")
    pending: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            assert isinstance(m, dict)
            _validate_system_message(m, i, mid_conversation_system)
            continue
        if role not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        blocks = content if isinstance(content, list) else []
        if not isinstance(content, str | list):
            raise Invalid(f"messages.{i}.content: Field required")
        for j, block in enumerate(blocks):
            _validate_block(block, f"messages.{i}.content.{j}")
        results = {b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"}
        if pending and not pending <= results:
            raise Invalid(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                + ", ".join(sorted(pending - results))
            )
        if results - pending:
            raise Invalid(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                + ", ".join(sorted(results - pending))
                + ". Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            )
        pending = (
            {b["id"] for b in blocks if b.get("type") == "tool_use"}
            if role == "assistant"
            else set()
        )


def validate_request(
    body: Any, *, count_tokens: bool = False, mid_conversation_system: bool = False
) -> None:
    """Raise Invalid with the real API's wording for the mistakes translation could make.

    `mid_conversation_system`: the model takes `"role": "system"` messages after the first turn
    (the SDK's SystemMessageParam; Claude Code 2.1.332 sends one without any beta); other models
    answer 400 with error code mid_conversation_system_not_supported.
    """
    if not isinstance(body, dict):
        raise Invalid("The request body is not valid JSON.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise Invalid("model: Field required")
    if not count_tokens:
        mt = body.get("max_tokens")
        if mt is None:
            raise Invalid("max_tokens: Field required")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise Invalid("max_tokens: Input should be greater than or equal to 1")
    _validate_messages(body.get("messages"), mid_conversation_system)
    system = body.get("system")
    system_ok = (
        system is None
        or isinstance(system, str)
        or (
            isinstance(system, list)
            and all(isinstance(b, dict) and b.get("type") == "text" for b in system)
        )
    )
    if not system_ok:
        raise Invalid("system: Input should be a valid string or a list of text blocks")
    for i, tool in enumerate(body.get("tools") or []):
        if tool.get("type") in (None, "custom") and not (
            tool.get("name") and isinstance(tool.get("input_schema"), dict)
        ):
            raise Invalid(f"tools.{i}.custom.input_schema: Field required")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in (
            "auto",
            "any",
            "tool",
            "none",
        ):
            raise Invalid(
                "tool_choice: Input tag does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"
            )
        if choice["type"] == "tool" and not choice.get("name"):
            raise Invalid("tool_choice.tool.name: Field required")
    for name, top in (("temperature", 1.0), ("top_p", 1.0)):
        value = body.get(name)
        if value is not None and value > top:
            raise Invalid(f"{name}: Input should be less than or equal to {top:g}")
        if value is not None and value < 0:
            raise Invalid(f"{name}: Input should be greater than or equal to 0")
    top_k = body.get("top_k")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool)):
        raise Invalid("top_k: Input should be a valid integer")
    if isinstance(top_k, int) and top_k < 0:
        raise Invalid("top_k: Input should be greater than or equal to 0")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise Invalid("stop_sequences: Input should be a valid list of strings")
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Invalid(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if not count_tokens and budget >= body["max_tokens"]:
            raise Invalid("`max_tokens` must be greater than `thinking.budget_tokens`.")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}):
        raise Invalid("metadata: Extra inputs are not permitted (only user_id)")
