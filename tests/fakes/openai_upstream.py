"""A protocol-faithful fake of the OpenAI Chat Completions API, on loopback."""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from tests.fakes import openai_other, openai_responses_api
from tests.fakes.openai_responses import chunks, completion
from tests.fakes.openai_validation import Invalid, validate_request
from tests.fakes.reply_plan import Ask, estimate_tokens, plan_reply, text_of
from tests.fakes.responses_validation import validate_responses_request
from tests.fakes.scripted import BEHAVIOUR, FakeUpstream, sse
from tests.fakes.upstream_world import World, openai_features

ERRORS = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", None, "You are not allowed to sample from this model"),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    429: (
        "tokens",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1")
_ids = itertools.count(1)


def openai_error(
    status: int, message: str | None = None, param: str | None = None, code: str | None = None
) -> web.Response:
    """An error body shaped like OpenAI's."""
    etype, default_code, default_message = ERRORS.get(
        status, ("server_error", None, "Server error")
    )
    body = {
        "error": {
            "message": message or default_message,
            "type": etype,
            "param": param,
            "code": code or default_code,
        }
    }
    return web.json_response(
        body, status=status, headers={"x-request-id": f"req_fake{next(_ids):06d}"}
    )


def ask_of(body: dict[str, Any]) -> Ask:
    """The neutral facts of a Chat Completions request."""
    messages = body["messages"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
    trailing_tools: list[dict[str, Any]] = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        trailing_tools.insert(0, m)
    stop = body.get("stop")
    tools = [
        (t["function"]["name"], t["function"].get("parameters") or {})
        for t in body.get("tools") or []
    ]
    return Ask(
        last_user_text=text_of(last_user.get("content")),
        tool_result_text=" | ".join(text_of(m.get("content")) for m in trailing_tools)
        if trailing_tools
        else None,
        tools=tools,
        stop_sequences=[stop] if isinstance(stop, str) else list(stop or []),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        want_thinking=False,
        input_tokens=estimate_tokens(messages, body.get("tools")),
    )


def responses_ask(body: dict[str, Any], history: list[dict[str, Any]]) -> Ask:
    """The neutral facts of a Responses request (after its previous_response_id history)."""
    raw = body.get("input")
    items = history + (
        [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    )
    last_user = next(
        (
            i
            for i in reversed(items)
            if i.get("type", "message") == "message" and i.get("role") == "user"
        ),
        {"content": ""},
    )
    outputs: list[dict[str, Any]] = []
    for item in reversed(items):
        if item.get("type") not in ("function_call_output", "custom_tool_call_output"):
            break
        outputs.insert(0, item)
    content = last_user.get("content")
    text = (
        content
        if isinstance(content, str)
        else "".join(
            p.get("text", "")
            for p in content or []
            if isinstance(p, dict) and p.get("type") == "input_text"
        )
    )
    tools = [
        (t["name"], t.get("parameters") or {})
        for t in body.get("tools") or []
        if t.get("type") in ("function", "custom")
    ]
    effort = (body.get("reasoning") or {}).get("effort")
    return Ask(
        last_user_text=text,
        tool_result_text=" | ".join(str(o.get("output")) for o in outputs) if outputs else None,
        tools=tools,
        stop_sequences=[],
        max_tokens=body.get("max_output_tokens"),
        want_thinking=effort not in (None, "none"),
        input_tokens=estimate_tokens(body.get("instructions"), items, body.get("tools")),
    )


class FakeOpenAI(FakeUpstream):
    """OpenAI: /v1/chat/completions (stream or not, include_usage), /v1/models, and with
    `serves_responses` the Responses API (/v1/responses, stored responses, input_tokens)."""

    def __init__(
        self,
        *,
        require_auth: bool = True,
        api_key: str | None = None,
        strict_fields: bool = True,
        models: tuple[str, ...] = DEFAULT_MODELS,
        cached_tokens: int = 64,
        serves_responses: bool = False,
    ) -> None:
        self.strict_fields = strict_fields
        self.models = models
        self.cached_tokens = cached_tokens
        self.world = World()  # scripted retirements and refusals (the canary's tests)
        self.serves_responses = serves_responses
        self.stored: dict[str, list[dict[str, Any]]] = {}  # response id -> conversation items
        self.responses: dict[str, dict[str, Any]] = {}  # response id -> the stored Response
        self.other = openai_other.OtherState()  # uploaded files
        super().__init__(require_auth=require_auth, api_key=api_key)

    def add_routes(self, app: web.Application) -> None:
        """Attach the OpenAI routes."""
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/responses/input_tokens", self._input_tokens)
        app.router.add_get("/v1/responses/{response_id}", self._retrieve_response)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files", self._files)
        app.router.add_get("/v1/files/{file_id}", self._file)
        app.router.add_delete("/v1/files/{file_id}", self._delete_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """An OpenAI-shaped error."""
        return openai_error(status, message)

    @property
    def base_url(self) -> str:
        """What a client or backend config uses: `<url>/v1`."""
        return self.url + "/v1"

    def backend(self, name: str = "openai", **kw: Any) -> Any:
        """A driftgate.proxy.config.BackendConfig pointing at this fake."""
        from driftgate.proxy.config import BackendConfig

        kw.setdefault("key", "sk-openai-fake-test-key")
        if self.serves_responses:
            kw.setdefault("responses", True)
        if "models" in kw:
            kw["models"] = tuple(kw["models"])
        return BackendConfig(name=name, kind="openai", base_url=self.base_url, **kw)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        bearer = request.headers.get("authorization", "")
        token = bearer[7:] if bearer.lower().startswith("bearer ") else None
        if self.require_auth and not token:
            return openai_error(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="missing_api_key",
            )
        if self.require_auth and self.api_key is not None and token != self.api_key:
            return openai_error(401, "Incorrect API key provided.")
        return None

    async def _models(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        data = [
            {"id": m, "object": "model", "created": 1715367049, "owned_by": "system"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    def _not_served(self, request: web.Request) -> web.Response | None:
        if self.serves_responses:
            return self._auth_error(request)
        # What a Chat-only OpenAI-compatible server (vLLM, llama.cpp...) answers.
        return web.json_response({"detail": "Not Found"}, status=404)

    def _history(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        previous = body.get("previous_response_id")
        if previous is None:
            return []
        if previous not in self.stored:
            raise Invalid(
                f"Previous response with id '{previous}' not found.", "previous_response_id"
            )
        return self.stored[previous]

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        refused = self._not_served(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
            history = self._history(body) if isinstance(body, dict) else []
            validate_responses_request(body, history)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        except Invalid as exc:
            code = "previous_response_not_found" if exc.param == "previous_response_id" else None
            return openai_error(400, str(exc), param=exc.param, code=code)
        reply = plan_reply(responses_ask(body, history), request[BEHAVIOUR], "call_")
        response_id = f"resp_fake{next(_ids):06d}"
        custom = frozenset(t["name"] for t in body.get("tools") or [] if t.get("type") == "custom")
        final = openai_responses_api.response(body, reply, response_id, self.cached_tokens, custom)
        if body.get("store", True):
            raw = body.get("input")
            own = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
            self.stored[response_id] = history + own + final["output"]
            self.responses[response_id] = final
        if not body.get("stream"):
            return await self.answer(request, final)
        return await self.stream(
            request,
            openai_responses_api.events(body, reply, response_id, self.cached_tokens, custom),
            broken=b'event: response.output_text.delta\ndata: {"type": "response.outp\n\n',
            error_event=lambda t: sse(
                "error",
                {
                    "type": "error",
                    "code": t,
                    "message": "The server had an error while processing your request.",
                    "param": None,
                    "sequence_number": 99,
                },
            ),
        )

    async def _input_tokens(self, request: web.Request) -> web.StreamResponse:
        refused = self._not_served(request)
        if refused is not None:
            return refused
        body = json.loads(await request.read())
        tokens = estimate_tokens(body.get("instructions"), body.get("input"), body.get("tools"))
        return web.json_response({"object": "response.input_tokens", "input_tokens": tokens})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
            validate_request(body, self.strict_fields)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        except Invalid as exc:
            return openai_error(400, str(exc), param=exc.param)
        refusal = self.world.refusal(body["model"], openai_features(body), "openai")
        if refusal is not None:
            code = refusal.error_type if refusal.status == 404 else "unsupported_parameter"
            return openai_error(refusal.status, refusal.message, code=code)
        reply = plan_reply(ask_of(body), request[BEHAVIOUR], "call_")
        completion_id = f"chatcmpl-fake{next(_ids):06d}"
        headers = {
            "x-request-id": f"req_fake{next(_ids):06d}",
            **self.world.rate_limit_headers("openai"),
        }
        if not body.get("stream"):
            return await self.answer(
                request,
                completion(reply, body["model"], completion_id, self.cached_tokens),
                headers,
            )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return await self.stream(
            request,
            chunks(reply, body["model"], completion_id, include_usage, self.cached_tokens),
            broken=b'data: {"id": "'
            + completion_id.encode()
            + b'", "choices": [{"delta": {"cont\n\n',
            error_event=lambda t: sse(
                None,
                {
                    "error": {
                        "message": "The server had an error while processing your request.",
                        "type": "server_error",
                        "param": None,
                        "code": t,
                    }
                },
            ),
            headers=headers,
        )

    async def _retrieve_response(self, request: web.Request) -> web.StreamResponse:
        refused = self._not_served(request)
        if refused is not None:
            return refused
        rid = request.match_info["response_id"]
        if rid not in self.responses:
            return openai_error(404, f"Response with id '{rid}' not found.", code="not_found")
        return web.json_response(self.responses[rid])

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.read())
            answer = openai_other.embeddings(body)
        except ValueError:
            return openai_error(400, "We could not parse the JSON body of your request.")
        except openai_other.Invalid as exc:
            return openai_error(400, str(exc), param=exc.param)
        if answer["model"] not in openai_other.EMBEDDING_MODELS:
            return openai_error(404, f"The model `{answer['model']}` does not exist.")
        headers = {"x-request-id": f"req_fake{next(_ids):06d}"}
        return web.json_response(answer, headers=headers)

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            body = await request.read()
            answer = openai_other.upload(self.other, request.headers.get("content-type", ""), body)
            return web.json_response(answer)
        except openai_other.Invalid as exc:
            return openai_error(400, str(exc), param=exc.param)

    async def _files(self, request: web.Request) -> web.StreamResponse:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        try:
            return web.json_response(openai_other.listing(self.other, request.query))
        except openai_other.Invalid as exc:
            return openai_error(400, str(exc), param=exc.param)

    def _stored_file(self, request: web.Request) -> tuple[dict[str, Any], bytes] | web.Response:
        refused = self._auth_error(request)
        if refused is not None:
            return refused
        file_id = request.match_info["file_id"]
        found = self.other.files.get(file_id)
        if found is None:
            return openai_error(404, f"No such File object: {file_id}", param="id")
        return found

    async def _file(self, request: web.Request) -> web.StreamResponse:
        found = self._stored_file(request)
        return found if isinstance(found, web.Response) else web.json_response(found[0])

    async def _delete_file(self, request: web.Request) -> web.StreamResponse:
        found = self._stored_file(request)
        if isinstance(found, web.Response):
            return found
        del self.other.files[found[0]["id"]]
        return web.json_response({"id": found[0]["id"], "object": "file", "deleted": True})

    async def _file_content(self, request: web.Request) -> web.StreamResponse:
        found = self._stored_file(request)
        if isinstance(found, web.Response):
            return found
        return await openai_other.content(request, found[1])
