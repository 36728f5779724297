"""The gateway application: endpoints wired to intake -> route -> forward -> respond -> record."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import orjson

from driftgate.proxy.auth import BackendAuth, GatewayKey, anthropic_version, backend_auth
from driftgate.proxy.config import Config
from driftgate.proxy.cooldown import Cooldowns
from driftgate.proxy.count_tokens import estimate
from driftgate.proxy.endpoints import ENDPOINTS, Endpoint, speaks
from driftgate.proxy.errors import (
    ConfigError,
    Dialect,
    GatewayError,
    RequestTimeout,
)
from driftgate.proxy.flow import Flow
from driftgate.proxy.forward import Forwarder
from driftgate.proxy.guard.guard import GuardRefused, SpendGuard, budget_table
from driftgate.proxy.guard.state import GuardState, open_guard_state
from driftgate.proxy.health import health, missing_keys, warn_about_backends
from driftgate.proxy.intake import flow_of, intake
from driftgate.proxy.models_list import anthropic_models, openai_models, wants_anthropic_shape
from driftgate.proxy.observe.observer import Observer
from driftgate.proxy.observe.pg.url import url_secrets
from driftgate.proxy.observe.probe import Prober
from driftgate.proxy.observe.recorder import Recorder
from driftgate.proxy.observe.routes import ObserveRoutes
from driftgate.proxy.observe.shape_log import SAMPLE_PER_FLUSH, ShapeLog
from driftgate.proxy.other import OtherEndpoints
from driftgate.proxy.redact import Redactor
from driftgate.proxy.respond.errors import error_response
from driftgate.proxy.respond.headers import JSON_CT
from driftgate.proxy.respond.responder import Responder
from driftgate.proxy.responses.store import open_store
from driftgate.proxy.responses.turns import ConversationStore
from driftgate.proxy.routing import Route, Router
from driftgate.proxy.serve.connections import ConnectionBook
from driftgate.proxy.serve.drain import Drain, shutting_down, uncancel_for_shutdown
from driftgate.proxy.serve.event_loop import loop_name
from driftgate.proxy.serve.protocol import Handler, Reply
from driftgate.proxy.serve.reload import live_part, restart_only_changes
from driftgate.proxy.serve.request import Request
from driftgate.proxy.serve.response import Response
from driftgate.proxy.serve.router import App
from driftgate.proxy.shared.board import open_cooldown_board
from driftgate.proxy.shared.redis_eviction import FIX as EVICTION_FIX
from driftgate.proxy.templates.store import TemplateStore
from driftgate.proxy.upstream import make_transport
from driftgate.proxy.upstream.proxies import ProxyChooser
from driftgate.proxy.upstream.settings import (
    TLSFileError,
    TransportSettings,
    settings_for,
    tls_context,
)
from driftgate.proxy.upstream.transport import Transport

log = logging.getLogger("driftgate.app")
GATEWAY_KEY = "gateway"  # app[GATEWAY_KEY] is the Gateway


@dataclass(slots=True)
class _Wiring:
    """What a Gateway builds from the reloadable part of its config (swapped whole on SIGHUP)."""

    config: Config
    transports: dict[TransportSettings, Transport]
    by_backend: dict[str, Transport]
    router: Router
    key: GatewayKey
    keyless: frozenset[str]
    auths: dict[str, BackendAuth]
    forwarder: Forwarder
    prober: Prober
    secrets: list[str | None]
    guard: SpendGuard


class Gateway:
    """The handlers and the state they share (one per app)."""

    def __init__(
        self,
        config: Config,
        store: TemplateStore,
        recorder: Recorder | None,
        transport_factory: Callable[[TransportSettings], Transport],
        clock: Callable[[], float],
        env: Mapping[str, str],
        conversations: ConversationStore,
        shapes: ShapeLog | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.shapes = shapes
        self.store = store
        self.clock = clock
        self.wall = wall
        self._env = env
        self._transport_factory = transport_factory
        self.cooldowns = Cooldowns(config.cooldown_seconds, clock)
        # Shared with the other gateways (Redis) or workers (DRIFTGATE_HOME); read locally.
        self.cooldown_board = open_cooldown_board(
            config, self.cooldowns, lambda: [b.name for b in self.config.backends]
        )
        self.observer = Observer(config, store.current, self.cooldowns, clock, recorder)
        self.keeper = self.observer.keeper
        self.conversations = conversations
        self.redactor = Redactor([])
        self.transports: dict[TransportSettings, Transport] = {}
        self._retired: list[Transport] = []
        self._apply(self._wire(config, None))
        self._tasks: list[asyncio.Task[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # the app's loop, known from start-up
        self.drain = Drain()
        self.connections = ConnectionBook(config.max_connections)
        self.responder = Responder(self.keeper, self.observer.stats, conversations, self.drain)

    def _wire(self, config: Config, guard: SpendGuard | None) -> _Wiring:
        """Everything built from the reloadable part of `config`; raises ConfigError, changes nothing."""
        env, store = self._env, self.store
        # Made now, so a bad TLS file is a ConfigError before the gateway listens. Backends with
        # equal settings share a transport (one pool per upstream host); a reload keeps the
        # transports whose settings did not change.
        transports: dict[TransportSettings, Transport] = {}
        made: list[Transport] = []
        by_backend: dict[str, Transport] = {}
        try:
            for b in config.backends:
                settings = settings_for(b, config.proxies)
                if settings not in transports:
                    kept = self.transports.get(settings)
                    if kept is None:
                        try:
                            kept = self._transport_factory(settings)
                        except TLSFileError as exc:
                            raise ConfigError(f"backend {b.name!r}: {exc}") from None
                        made.append(kept)
                    transports[settings] = kept
                by_backend[b.name] = transports[settings]
            auths = {b.name: backend_auth(b, env) for b in config.backends}
            warn_about_backends(config)
            key = GatewayKey(config.api_key)
            wiring = _Wiring(
                config=config,
                transports=transports,
                by_backend=by_backend,
                router=Router(config, store.current),
                key=key,
                keyless=missing_keys(config, env),
                auths=auths,
                forwarder=Forwarder(
                    by_backend.__getitem__,
                    auths,
                    self.cooldowns,
                    key,
                    self.clock,
                    expand=self.conversations.expand,
                    stats=self.observer.stats,
                ),
                prober=Prober(
                    auths,
                    lambda: anthropic_version(store.current()),
                    self.clock,
                    tls=lambda b: tls_context(settings_for(b, config.proxies)),
                    proxies=ProxyChooser(config.proxies),
                ),
                secrets=[
                    config.api_key,
                    *(b.resolve_key(env) for b in config.backends),
                    *url_secrets(config.analytics.database_url),
                ],
                guard=_spend_guard(config, self.wall, self.observer, guard),
            )
        except BaseException:
            for transport in made:  # nothing made for a refused config outlives it
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().create_task(transport.close())
            raise
        return wiring

    def _apply(self, w: _Wiring) -> None:
        self.config = w.config
        self.transports = w.transports
        self._by_backend = w.by_backend
        self.router = w.router
        self.key = w.key
        self.keyless = w.keyless
        self.auths = w.auths
        self.forwarder = w.forwarder
        self.prober = w.prober
        self.redactor.add(w.secrets)
        self.guard = w.guard
        self.keeper.settle = w.guard.settle_many if w.guard.enabled else None

    def reload(self, new: Config) -> list[str]:
        """Apply a reloaded config to the running gateway (ConfigError: nothing changed).

        Requests in flight finish with what they started with; the next ones see the new
        backends, routes, fallbacks, budgets, templates. The sentences returned name the changes
        that wait for a restart.
        """
        old = self.config
        applied = live_part(old, new)
        wiring = self._wire(applied, self.guard)
        before, old_store = self.transports, self.guard.store
        self._apply(wiring)
        if wiring.guard.store is not old_store:  # the guard turned on or off: close the old store
            self._tasks.append(asyncio.get_running_loop().create_task(_closed(old_store)))
        self.cooldowns.seconds = applied.cooldown_seconds
        self.store.reload(applied.templates_dir)
        logging.getLogger().setLevel(getattr(logging, applied.log_level.upper(), logging.INFO))
        kept = set(map(id, wiring.transports.values()))
        retired = [t for t in before.values() if id(t) not in kept]
        if retired:
            self._retired.extend(retired)
            busy = self.drain.tasks()
            self._tasks.append(asyncio.get_running_loop().create_task(self._retire(retired, busy)))
        return restart_only_changes(old, new)

    async def _retire(self, transports: list[Transport], busy: list[asyncio.Task[object]]) -> None:
        """Close transports a reload replaced once the requests that may use them are over."""
        if busy:
            await asyncio.wait(busy)
        for transport in transports:
            if transport in self._retired:
                self._retired.remove(transport)
                await transport.close()

    def take_now(self, request: Request, endpoint: Endpoint) -> Flow | None:
        """Authenticate and read the request into a Flow when its body has all come (usually
        with its head: no coroutine), else None (`take` waits for it); its shape goes to the
        shape log."""
        self.key.check(request.headers)
        raw = request.read_now(self.config.max_body_bytes)
        if raw is None:
            return None
        flow = flow_of(request, endpoint, raw, self.clock())
        if self.shapes is not None:
            self.shapes.offer(endpoint.name, flow.headers, flow.raw)
        return flow

    async def take(self, request: Request, endpoint: Endpoint) -> Flow:
        """`take_now` for a body still on its way: waits for it (within the body deadline)."""
        flow = self.take_now(request, endpoint)
        if flow is None:
            flow = await intake(request, endpoint, self.config, self.clock)
            if self.shapes is not None:
                self.shapes.offer(endpoint.name, flow.headers, flow.raw)
        return flow

    def transport(self, backend: str) -> Transport:
        """The transport that reaches `backend`."""
        return self._by_backend[backend]

    def guarded(self, handler: Handler, dialect: Dialect | None) -> Handler:
        """Map every failure to an error in the client's dialect; never a stack trace to a client."""

        async def run(request: Request) -> Reply:
            task = self.drain.enter(request.conn.task)  # asyncio.current_task is a Python call
            try:
                return await handler(request)
            except asyncio.CancelledError:
                # Cut by the shutdown before any answer went out: say so in the client's dialect.
                if request.conn.answer_started or not uncancel_for_shutdown(self.drain):
                    raise
                resp = error_response(shutting_down(), dialect or _guess_dialect(request))
                return await _hang_up(request, resp)
            except RequestTimeout as exc:  # a client too slow to send its body: answer, hang up
                resp = error_response(exc, dialect or _guess_dialect(request))
                return await _hang_up(request, resp)
            except GatewayError as exc:
                return error_response(exc, dialect or _guess_dialect(request))
            except Exception as exc:
                tb = "".join(traceback.format_exception(exc))
                log.error(
                    "unexpected error on %s %s:\n%s",
                    request.method,
                    request.path,
                    self.redactor.text(tb),
                )
                generic = GatewayError("the gateway hit an unexpected error; see its log")
                return error_response(generic, dialect or _guess_dialect(request))
            finally:
                self.drain.leave(task)

        return run

    def untracked(self, handler: Handler) -> Handler:
        """`guarded` for a long-lived stream a shutdown should not wait for (the live analytics):
        not counted in flight; it ends when the app shuts down (`on_shutdown`)."""

        async def run(request: Request) -> Reply:
            try:
                return await handler(request)
            except GatewayError as exc:
                return error_response(exc, _guess_dialect(request))
            except Exception:
                log.exception("unexpected error on %s %s", request.method, request.path)
                generic = GatewayError("the gateway hit an unexpected error; see its log")
                return error_response(generic, _guess_dialect(request))

        return run

    def endpoint(self, endpoint: Endpoint) -> Handler:
        """The handler of a completion or token-count endpoint: intake, then complete or count."""
        take_now, take = self.take_now, self.take
        answer = self.count if endpoint.counts else self.complete

        def handle(request: Request) -> Awaitable[Reply]:
            # The coroutine of the step that answers: none of its own, nor one to read a body
            # that came with its head.
            flow = take_now(request, endpoint)
            if flow is None:
                return _when_read(request, endpoint, take, answer)
            return answer(request, flow)

        return handle

    async def count(self, request: Request, flow: Flow) -> Reply:
        """A token count: forwarded to the routes whose backend speaks the client's dialect,
        estimated by the gateway when none does."""
        routes = self.router.resolve(flow.model)
        served = [r for r in routes if speaks(r.backend, flow.client_dialect)]
        if served:
            return await self.complete(request, flow, served)
        doc, tokens = estimate(flow.endpoint, flow.body)
        return await self.responder.estimated(request, flow, routes[0], doc, tokens)

    async def complete(
        self, request: Request, flow: Flow, routes: Sequence[Route] | None = None
    ) -> Reply:
        """Route, forward, respond; the respond step records the outcome."""
        templates = flow.templates = self.store.current()
        if routes is None:
            routes = self.router.resolve(flow.model, templates)
        flow.route = routes[0]  # what a record names until a route answers
        if flow.client_dialect == "responses":
            for r in routes:
                if not r.backend.serves_responses:
                    # A shared store (workers, Redis) reads what the request refers to before it
                    # is translated; a request that refers to nothing stored reads nothing.
                    flow.stored = await self.conversations.load(flow.body)
                    break
        if self.guard.enabled and not flow.counting:  # a count is never billed, so never held
            first = routes[0]
            try:
                flow.ticket = await self.guard.admit(
                    len(flow.raw),
                    flow.body,
                    first.backend.name,
                    first.model,
                    "anthropic" if first.backend.kind == "anthropic" else "openai",
                    templates,
                )
            except GuardRefused as refused:  # recorded: /analytics and top show it and why
                self.keeper.refused(flow, first, refused.status, refused.outcome, refused.reason)
                raise
        try:
            answer = await self.forwarder.send(
                flow, routes, templates, self.config.convert_unsupported
            )
        except BaseException as exc:
            if not self.responder.unanswered(flow, exc):
                self.guard.release(flow.ticket)  # refused before any upstream ran: nothing spent
            raise
        if self.guard.enabled:
            self.guard.check_headers(answer.response.headers)
        return await self.responder.respond(request, flow, answer)

    async def models(self, request: Request) -> Reply:
        """GET /v1/models in the asking SDK's shape."""
        self.key.check(request.headers)
        routable = self.router.routable()
        doc = (
            anthropic_models(routable)
            if wants_anthropic_shape(request.headers)
            else openai_models(routable)
        )
        return Response(body=orjson.dumps(doc), content_type=JSON_CT)

    async def health(self, request: Request) -> Reply:
        """GET /health (open: it shows nothing secret); ?probe=1 also probes every backend."""
        probes = None
        if request.query.get("probe", "") not in ("", "0", "false"):
            probes = await self.prober.probe()
        doc = health(
            self.config,
            self.store.current(),
            self.cooldowns,
            self.keyless,
            self.connections.snapshot(),
            self.observer.stats,
            probes,
        )
        problems: list[str] = doc.setdefault("problems", [])
        doc["event_loop"] = loop_name(asyncio.get_running_loop())
        if self.observer.database is not None:
            doc["analytics"] = db = self.observer.database.state()  # the URL without its password
            if not db["connected"] and db.get("error"):
                problems.append(f"analytics: PostgreSQL at {db['url']} is unreachable "
                                f"({db['error']}); records wait in memory, then are dropped")  # fmt: skip
        if self.cooldown_board is not None:
            doc["cooldowns"] = board = self.cooldown_board.health()
            if board.get("reachable") is False:
                problems.append(f"cooldowns: Redis at {board.get('url')} is unreachable "
                                f"({board.get('error')}); each gateway keeps its own")  # fmt: skip
        if self.config.worker_processes > 1:
            # connections and recent error rates are this worker's; guard and cooldowns are shared
            doc["worker"] = {
                "pid": os.getpid(),
                "workers": self.config.worker_processes,
                # /analytics/stream: every worker's records (from the usage file), or this one's
                "live_stream": "every worker" if self.observer.live_file else "this worker",
            }
        stored = self.conversations.health()
        if stored is not None:
            doc["responses_store"] = stored
            if not stored["reachable"]:
                problems.append(f"stored Responses conversations: Redis at {stored['url']} is "
                                f"unreachable ({stored.get('error')}); follow-ups resolve only "
                                "on the host that stored them")  # fmt: skip
                if doc["status"] == "ok":
                    doc["status"] = (
                        "degraded"  # conversations continue on the host that stored them
                    )
        if self.guard.enabled:
            doc["guard"] = await self.guard.state()
            evicts = (doc["guard"].get("store") or {}).get("eviction")
            if evicts:  # not an outage: the guard works, but Redis may forget what it counted
                problems.append(f"spend guard: {evicts}; {EVICTION_FIX}")
            if doc["guard"]["state"] == "halted":
                doc["status"] = "halted"  # the gateway answers, but refuses completions
            elif doc["guard"]["state"] == "store_unreachable":
                store = doc["guard"].get("store", {})
                then = ("requests go unguarded" if store.get("fail") == "open"
                        else "completions are refused")  # fmt: skip
                where = f" at {store['url']}" if store.get("url") else ""
                problems.append(f"spend guard: its store{where} is unreachable "
                                f"({store.get('error')}); {then} until it answers")  # fmt: skip
                if doc["status"] == "ok":
                    doc["status"] = (
                        "degraded"  # requests go unguarded (open) or are refused (closed)
                    )
        if not problems:
            del doc["problems"]
        return Response(body=orjson.dumps(doc), content_type=JSON_CT)

    async def resume_guard(self, request: Request) -> Reply:
        """POST /guard/resume: lift the spend guard's halt (what `driftgate resume` calls)."""
        self.key.check(request.headers)
        was = await self.guard.resume() if self.guard.enabled else False
        doc = {"resumed": was, "via": "gateway", "guard": await self.guard.state()}
        return Response(body=orjson.dumps(doc), content_type=JSON_CT)

    async def on_startup(self, app: App) -> None:
        """Start the overlay watcher and the record batcher."""
        self.loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self.store.watch()), *self.observer.start()]
        await self.guard.store.start()
        if self.cooldown_board is not None:
            await self.cooldown_board.start()
        if self.shapes is not None:
            self.shapes.start()

    async def on_shutdown(self, app: App) -> None:
        """Before open connections are waited for: end the live analytics streams."""
        self.observer.shutdown()

    async def on_cleanup(self, app: App) -> None:
        """Stop the background tasks, close the upstream connections, flush the recorder."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in [*self.transports.values(), *self._retired]:
            await transport.close()
        self.transports.clear()
        self._retired.clear()
        self.observer.close()
        if self.shapes is not None:
            self.shapes.close()
        await self.guard.store.close()
        if self.cooldown_board is not None:
            await self.cooldown_board.close()
        await self.conversations.aclose()


async def _when_read(
    request: Request,
    endpoint: Endpoint,
    take: Callable[[Request, Endpoint], Awaitable[Flow]],
    answer: Callable[[Request, Flow], Awaitable[Reply]],
) -> Reply:
    """Answer a request whose body was still on its way when its handler ran."""
    flow = await take(request, endpoint)
    return await answer(request, flow)


async def _closed(store: GuardState) -> None:
    """Close a guard store a reload replaced (it sends what is pending first)."""
    await store.close()


async def _hang_up(request: Request, resp: Response) -> Response:
    """Send `resp`, then close the connection at once (what the client sent is not read on)."""
    resp.force_close()
    with contextlib.suppress(ConnectionError):
        await resp.prepare(request)
    return resp


def _spend_guard(
    config: Config, wall: Callable[[], float], observer: Observer, running: SpendGuard | None
) -> SpendGuard:
    """The app's spend guard; its state lives in DRIFTGATE_HOME when any limit is set (shared by
    every worker with --workers N). A reload keeps the running guard's store."""
    settings = config.guard
    names = {b.name for b in config.backends}
    for name in settings.backends:
        if name not in names:
            raise ConfigError(
                f"[guard.backends.{name}] names backend {name!r}, which is not configured "
                f"(configured: {', '.join(sorted(names)) or 'none'})"
            )
    limits_for = budget_table(settings)
    store: GuardState
    if running is not None and running.enabled == settings.enabled:
        store = running.store
        store.budgets(limits_for)  # a reload may have changed them
    else:
        store = open_guard_state(config, limits_for, wall)
    metrics = observer.metrics
    on_state = metrics.guard_state.state if metrics is not None else None
    guard = SpendGuard(settings, store, wall, on_state, fail_open=config.state.fail == "open")
    if running is not None:
        guard.unguarded = running.unguarded
    if settings.enabled and metrics is not None and store.kind != "embedded":
        health = store.health
        metrics.sources.guard_store_up = lambda: bool((health() or {}).get("reachable"))
        metrics.sources.guard_unguarded = lambda: guard.unguarded
    return guard


def _guess_dialect(request: Request) -> Dialect:
    if request.path.startswith("/v1/messages") or wants_anthropic_shape(request.headers):
        return "anthropic"
    return "openai"


def open_shape_log(config: Config) -> ShapeLog | None:
    """The shape log [shapes] asks for (on by default), or None when it is off."""
    if not config.shapes.enabled:
        return None
    # With N workers each takes its share of the host's samples (one process's budget in all).
    budget = max(1, SAMPLE_PER_FLUSH // config.worker_processes)
    return ShapeLog(
        config.shapes.file(config.home), config.shapes.max_shapes, sample_per_flush=budget
    )


def create_app(
    config: Config,
    *,
    store: TemplateStore | None = None,
    recorder: Recorder | None = None,
    transport_factory: Callable[[TransportSettings], Transport] | None = None,
    clock: Callable[[], float] = time.monotonic,
    env: Mapping[str, str] | None = None,
    conversations: ConversationStore | None = None,
    shapes: ShapeLog | None = None,
    wall: Callable[[], float] = time.time,
) -> App:
    """The gateway app; `env` (default os.environ) is only read for backend keys, once."""
    store = store or TemplateStore(config.templates_dir, logging.getLogger("driftgate.templates"))
    gw = Gateway(
        config,
        store,
        recorder,
        transport_factory or make_transport,
        clock,
        os.environ if env is None else env,
        conversations or open_store(config, wall),
        shapes or open_shape_log(config),
        wall,
    )
    app = App()
    app[GATEWAY_KEY] = gw
    for endpoint in ENDPOINTS:
        app.add("POST", endpoint.path, gw.guarded(gw.endpoint(endpoint), endpoint.dialect))
    app.add("GET", "/v1/models", gw.guarded(gw.models, None))
    app.add("GET", "/health", gw.guarded(gw.health, None))
    app.add("POST", "/guard/resume", gw.guarded(gw.resume_guard, None))
    observe = ObserveRoutes(gw.observer, gw.key)
    app.add("GET", "/metrics", gw.guarded(observe.metrics, None))
    app.add("GET", "/analytics", gw.guarded(observe.analytics, None))
    app.add("GET", "/analytics/stream", gw.untracked(observe.stream))
    # Anything else: other /v1/ endpoints forwarded as sent (forward_other_endpoints), else a 404.
    app.fallback(gw.guarded(OtherEndpoints(gw).handle, None))
    app.on_startup.append(gw.on_startup)
    app.on_shutdown.append(gw.on_shutdown)
    app.on_cleanup.append(gw.on_cleanup)
    return app
