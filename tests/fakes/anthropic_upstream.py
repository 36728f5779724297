"""A protocol-faithful fake of the Anthropic Messages API, on loopback."""

from __future__ import annotations

import fnmatch
import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes import anthropic_batches
from tests.fakes.anthropic_responses import Cache, events, message
from tests.fakes.anthropic_validation import Invalid, validate_request
from tests.fakes.reply_plan import Ask, estimate_tokens, plan_reply, text_of
from tests.fakes.scripted import BEHAVIOUR, FakeUpstream, sse
from tests.fakes.upstream_world import World, anthropic_features

ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
DEFAULT_MODELS = ("claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5")
# Models that take system messages mid-conversation (Claude Code 2.1.332 sends them to its
# default, claude-opus-5-5); the older ones refuse with mid_conversation_system_not_supported.
MID_CONVERSATION_SYSTEM = ("claude-opus-5*", "claude-sonnet-5*", "claude-haiku-5*")
_ids = itertools.count(1)


def anthropic_error(
    status: int,
    message: str | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
) -> web.Response:
    """An error body shaped like Anthropic's, with a request-id header."""
    default_type, default_message = ERROR_TYPES.get(status, ("api_error", "Internal server error"))
    request_id = f"req_fake{next(_ids):06d}"
    error: dict[str, Any] = {
        "type": error_type or default_type,
        "message": message or default_message,
    }
    if error_code is not None:
        error["details"] = {"error_code": error_code}
    body = {"type": "error", "error": error, "request_id": request_id}
    return web.json_response(body, status=status, headers={"request-id": request_id})


def ask_of(body: dict[str, Any]) -> Ask:
    """The neutral facts of an Anthropic request."""
    messages = body["messages"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    content = last_user.get("content")
    blocks = content if isinstance(content, list) else []
    results = [b for b in blocks if b.get("type") == "tool_result"]
    tools = [
        (t["name"], t.get("input_schema") or {}) for t in body.get("tools") or [] if t.get("name")
    ]
    thinking = body.get("thinking")
    return Ask(
        last_user_text=text_of(content),
        tool_result_text=" | ".join(text_of(r.get("content")) for r in results)
        if results
        else None,
        tools=tools,
        stop_sequences=body.get("stop_sequences") or [],
        max_tokens=body.get("max_tokens"),
        want_thinking=isinstance(thinking, dict)
        and thinking.get("type") in ("enabled", "adaptive"),
        input_tokens=estimate_tokens(body.get("system"), messages, body.get("tools")),
    )


class FakeAnthropic(FakeUpstream):
    """Anthropic Messages API: /v1/messages (stream or not), count_tokens, /v1/models."""

    def __init__(
        self,
        *,
        require_auth: bool = True,
        api_key: str | None = None,
        require_version: bool = True,
        models: tuple[str, ...] = DEFAULT_MODELS,
        cache_read_tokens: int = 128,
        cache_creation_tokens: int = 32,
        mid_conversation_system: tuple[str, ...] = MID_CONVERSATION_SYSTEM,
    ) -> None:
        self.require_version = require_version
        self.mid_conversation_system = mid_conversation_system
        self.models = models
        self.cache_read_tokens = cache_read_tokens
        self.cache_creation_tokens = cache_creation_tokens
        self.world = World()  # scripted retirements and refusals (the canary's tests)
        self.batches: dict[str, dict[str, Any]] = {}  # Message Batches created, by id
        super().__init__(require_auth=require_auth, api_key=api_key)

    @property
    def cache(self) -> Cache:
        """The cache token counts reported in usage (settable through the two attributes)."""
        return Cache(self.cache_read_tokens, self.cache_creation_tokens)

    def add_routes(self, app: web.Application) -> None:
        """Attach the Anthropic routes."""
        app.router.add_post("/v1/messages", self._messages)
        app.router.add_post("/v1/messages/count_tokens", self._count_tokens)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/v1/models/{model_id}", self._model)
        app.router.add_post("/v1/messages/batches", self._create_batch)
        app.router.add_get("/v1/messages/batches/{batch_id}", self._batch)

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """An Anthropic-shaped error."""
        return anthropic_error(status, message)

    def backend(self, name: str = "anthropic", **kw: Any) -> Any:
        """A driftgate.proxy.config.BackendConfig pointing at this fake."""
        from driftgate.proxy.config import BackendConfig

        kw.setdefault("key", "sk-ant-fake-test-key")
        if "models" in kw:
            kw["models"] = tuple(kw["models"])
        return BackendConfig(name=name, kind="anthropic", base_url=self.url, **kw)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-api-key")
        bearer = request.headers.get("authorization", "")
        token = key or (bearer[7:] if bearer.lower().startswith("bearer ") else None)
        if self.require_auth and not token:
            return anthropic_error(401, "x-api-key header is required")
        if self.api_key is not None and token != self.api_key:
            return anthropic_error(401, "invalid x-api-key")
        if self.require_version and not request.headers.get("anthropic-version"):
            return anthropic_error(400, "anthropic-version: header is required")
        return None

    async def _parsed(
        self, request: web.Request, count_tokens: bool
    ) -> dict[str, Any] | web.Response:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
            model = body.get("model") if isinstance(body, dict) else None
            validate_request(
                body,
                count_tokens=count_tokens,
                mid_conversation_system=isinstance(model, str)
                and any(fnmatch.fnmatchcase(model, p) for p in self.mid_conversation_system),
            )
        except ValueError:
            return anthropic_error(400, "The request body is not valid JSON.")
        except Invalid as exc:
            return anthropic_error(400, str(exc), error_code=exc.error_code)
        assert isinstance(body, dict)
        return body

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        body = await self._parsed(request, count_tokens=True)
        if isinstance(body, web.Response):
            return body
        return web.json_response({"input_tokens": ask_of(body).input_tokens})

    async def _models(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        data = [self._model_obj(m) for m in self.models]
        return web.json_response(
            {
                "data": data,
                "has_more": False,
                "first_id": self.models[0] if self.models else None,
                "last_id": self.models[-1] if self.models else None,
            }
        )

    async def _model(self, request: web.Request) -> web.StreamResponse:
        model_id = request.match_info["model_id"]
        if model_id not in self.models:
            return anthropic_error(404, f"model: {model_id}")
        return web.json_response(self._model_obj(model_id))

    @staticmethod
    def _model_obj(model_id: str) -> dict[str, Any]:
        return {
            "type": "model",
            "id": model_id,
            "display_name": model_id.replace("-", " ").title(),
            "created_at": "2025-09-29T00:00:00Z",
        }

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._parsed(request, count_tokens=False)
        if isinstance(body, web.Response):
            return body
        refusal = self.world.refusal(
            body["model"], anthropic_features(body, request.headers), "anthropic"
        )
        if refusal is not None:
            return anthropic_error(refusal.status, refusal.message, refusal.error_type)
        reply = plan_reply(ask_of(body), request[BEHAVIOUR], "toolu_")
        msg_id = f"msg_fake{next(_ids):06d}"
        headers = {
            "request-id": f"req_fake{next(_ids):06d}",
            **self.world.rate_limit_headers("anthropic"),
        }
        if not body.get("stream"):
            return await self.answer(
                request, message(reply, body["model"], msg_id, self.cache), headers
            )
        return await self.stream(
            request,
            events(reply, body["model"], msg_id, self.cache),
            broken=b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_del\n\n',
            error_event=lambda t: sse(
                "error", {"type": "error", "error": {"type": t, "message": "Overloaded"}}
            ),
            headers=headers,
        )

    def _validate_params(self, params: Any) -> None:
        model = params.get("model") if isinstance(params, dict) else None
        validate_request(
            params,
            count_tokens=False,
            mid_conversation_system=isinstance(model, str)
            and any(fnmatch.fnmatchcase(model, p) for p in self.mid_conversation_system),
        )

    async def _create_batch(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            created = anthropic_batches.batch(
                json.loads(await request.read()), self._validate_params
            )
        except ValueError:
            return anthropic_error(400, "The request body is not valid JSON.")
        except Invalid as exc:
            return anthropic_error(400, str(exc), error_code=exc.error_code)
        self.batches[created["id"]] = created
        return web.json_response(created, headers={"request-id": f"req_fake{next(_ids):06d}"})

    async def _batch(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        batch_id = request.match_info["batch_id"]
        found = self.batches.get(batch_id)
        if found is None:
            return anthropic_error(404, f"message_batch: {batch_id}")
        return web.json_response(found)
