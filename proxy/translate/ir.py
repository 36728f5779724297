"""The dialect-neutral representation every adapter parses into and renders from.

Plain slotted dataclasses, not frozen ones: nothing mutates them after parsing, and a frozen
ChatRequest cost 1.4 us to build against 0.5 (one object.__setattr__ per field).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from driftgate.proxy.sse import Usage

# "system": instructions given in the middle of the conversation, kept at their position; the
# leading system prompt is ChatRequest.system.
Role = Literal["user", "assistant", "system"]
# Neutral stop reasons; each adapter maps its own vocabulary onto these.
StopReason = Literal["stop", "stop_sequence", "length", "tool_calls", "content_filter", "pause"]
Effort = Literal["low", "medium", "high"]


@dataclass(slots=True)
class TextPart:
    """Plain text."""

    text: str


@dataclass(slots=True)
class ImagePart:
    """An image given inline (base64 `data` + `media_type`) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None


@dataclass(slots=True)
class ToolCallPart:
    """The model asks to call a tool; `arguments` is the JSON text of its input."""

    id: str
    name: str
    arguments: str


@dataclass(slots=True)
class ToolResultPart:
    """The caller answers a tool call."""

    tool_call_id: str
    content: tuple[TextPart | ImagePart, ...]
    is_error: bool = False


@dataclass(slots=True)
class ThinkingPart:
    """Model reasoning; `signature` (Anthropic) lets it be sent back, `redacted` holds opaque data."""

    text: str
    signature: str | None = None
    redacted: str | None = None


@dataclass(slots=True)
class FilePart:
    """A document (a PDF, say) given inline (base64 `data` + `media_type`) or by `url`."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    filename: str | None = None


Part = TextPart | ImagePart | ToolCallPart | ToolResultPart | ThinkingPart | FilePart


@dataclass(slots=True)
class Message:
    """One conversation turn (a "system" one holds text parts only)."""

    role: Role
    parts: tuple[Part, ...]


@dataclass(slots=True)
class ToolDef:
    """A function the model may call; `parameters` is a JSON Schema."""

    name: str
    description: str | None
    parameters: dict[str, Any]


@dataclass(slots=True)
class ToolChoice:
    """auto / any (must call some tool) / none / tool (must call `name`)."""

    kind: Literal["auto", "any", "none", "tool"]
    name: str | None = None


@dataclass(slots=True)
class Reasoning:
    """Extended thinking: a token budget (Anthropic), an effort (OpenAI), or adaptive."""

    budget_tokens: int | None = None
    effort: Effort | None = None
    adaptive: bool = False


@dataclass(slots=True)
class ResponseFormat:
    """Structured output: JSON matching `schema` (json_schema), or any JSON object (json_object)."""

    kind: Literal["json_schema", "json_object"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class ChatRequest:
    """A chat request in neither dialect."""

    messages: tuple[Message, ...]
    system: tuple[TextPart, ...] = ()
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    tools: tuple[ToolDef, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    user: str | None = None
    dropped: tuple[str, ...] = ()
    response_format: ResponseFormat | None = None


@dataclass(slots=True)
class ChatResponse:
    """A complete (non-streamed) model answer."""

    id: str | None
    parts: tuple[Part, ...]
    stop_reason: StopReason | None
    usage: Usage = field(default_factory=Usage)
    stop_sequence: str | None = None
    created: int | None = None


# Stream events: what one upstream SSE event means, independent of dialect.
@dataclass(slots=True)
class StreamStart:
    """The message began."""

    id: str | None
    usage: Usage


@dataclass(slots=True)
class BlockStart:
    """A content block opened at `index` (text, tool call or thinking)."""

    index: int
    kind: Literal["text", "tool_call", "thinking"]
    tool_id: str | None = None
    tool_name: str | None = None


@dataclass(slots=True)
class TextDelta:
    """More text for the block at `index`."""

    index: int
    text: str


@dataclass(slots=True)
class ArgumentsDelta:
    """A fragment of a tool call's JSON arguments."""

    index: int
    fragment: str


@dataclass(slots=True)
class ThinkingDelta:
    """More reasoning text, its signature, or (`redacted`) the opaque data of redacted reasoning."""

    index: int
    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(slots=True)
class BlockStop:
    """The block at `index` is complete."""

    index: int


@dataclass(slots=True)
class StreamEnd:
    """The message is complete: why it stopped, and the final usage."""

    stop_reason: StopReason | None
    usage: Usage
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamDone:
    """The terminal event (Anthropic message_stop, OpenAI [DONE])."""


@dataclass(slots=True)
class StreamError:
    """The upstream reported an error inside the stream."""

    message: str
    status: int = 500


StreamEvent = (
    StreamStart
    | BlockStart
    | TextDelta
    | ArgumentsDelta
    | ThinkingDelta
    | BlockStop
    | StreamEnd
    | StreamDone
    | StreamError
)
