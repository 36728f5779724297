"""Run the gateway: in a background thread (tests, bench) or in the foreground (`driftgate proxy`)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from driftgate.proxy import __version__
from driftgate.proxy.app import GATEWAY_KEY, Gateway, create_app
from driftgate.proxy.auth import check_bind
from driftgate.proxy.config import Config
from driftgate.proxy.errors import ConfigError
from driftgate.proxy.observe.json_logs import setup_logging
from driftgate.proxy.redact import RedactingFilter
from driftgate.proxy.self_loop import check_self_loop
from driftgate.proxy.serve.connections import ConnectionBook, ensure_fd_limit
from driftgate.proxy.serve.event_loop import loop_factory
from driftgate.proxy.serve.listener import HttpServer, Limits
from driftgate.proxy.serve.router import App

log = logging.getLogger("driftgate.server")


def check_listen(config: Config) -> None:
    """Refuse a listen address that cannot work, before anything starts."""
    check_bind(config)
    if not 0 <= config.port <= 65535:
        raise ConfigError(
            f"port must be between 0 and 65535 (0 = any free port), got {config.port}"
        )
    check_self_loop(config)


WILDCARD_HOSTS = ("0.0.0.0", "", "::")


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


@dataclass(slots=True)
class Serving:
    """A started gateway: the app, its HTTP server, the listening socket, its client connections."""

    app: App
    server: HttpServer
    listener: asyncio.AbstractServer
    book: ConnectionBook
    port: int


HANDLERS_SETTLE = 1.0  # seconds handlers ended by the shutdown hooks (live streams) get to end


async def _start_site(config: Config, app: App, *, reuse_port: bool = False) -> Serving:
    await app.startup()
    book = app[GATEWAY_KEY].connections
    limits = Limits(
        head_timeout=config.head_timeout,
        body_timeout=config.body_timeout,
        idle_timeout=config.idle_timeout,
        max_body=config.max_body_bytes,
    )
    server = HttpServer(app, book, limits)
    try:
        listener = await asyncio.get_running_loop().create_server(
            server.factory, config.host or None, config.port, reuse_port=reuse_port or None
        )
    except BaseException:
        await app.shutdown()
        await app.cleanup()  # closes the upstream connections and the recorder
        raise
    port = int(listener.sockets[0].getsockname()[1])
    return Serving(app, server, listener, book, port)


async def stop_serving(serving: Serving, grace: float) -> int:
    """Stop accepting at once, close idle connections, let requests in flight finish for `grace`
    seconds, end the rest as the gateway's doing, then clean up (records flushed). How many
    requests were cut."""
    serving.listener.close()  # new connections are refused from here on
    serving.server.close_idle()  # idle keep-alive connections close now; busy ones after
    gw: Gateway = serving.app[GATEWAY_KEY]
    drain = gw.drain
    log.info(
        "stopping: not accepting connections; %d request(s) in flight, grace %gs "
        "(signal again to cut them now)",
        drain.in_flight,
        grace,
    )
    cut = await drain.wait(grace)
    await serving.app.shutdown()  # ends the live analytics streams
    await serving.server.settle(HANDLERS_SETTLE)
    await serving.server.close()
    await serving.app.cleanup()
    return cut


class GatewayServer:
    """The gateway in its own thread and event loop; `start()` returns once it is listening."""

    def __init__(self, config: Config, **create_app_kwargs: Any) -> None:
        check_listen(config)
        self.config = config
        self._kwargs = create_app_kwargs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._serving: Serving | None = None
        self.port = 0
        self.url = ""
        self.app: App | None = None

    def start(self) -> None:
        """Start listening on config.host:config.port (0 picks a free port)."""
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = loop_factory(self.config.event_loop)()
        self._loop = loop

        async def boot() -> None:
            self.app = create_app(self.config, **self._kwargs)
            self._serving = await _start_site(self.config, self.app)
            self.port = self._serving.port

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(boot())
            except BaseException as exc:  # handed to the starting thread, which re-raises it
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="driftgate-gateway", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]
        self.url = _url(self.config.host, self.port)

    def stop(self) -> None:
        """Stop as on SIGTERM (drain up to shutdown_grace, then cut), clean up, end the thread."""
        loop, thread, serving = self._loop, self._thread, self._serving
        if loop is None or thread is None or not thread.is_alive():
            return
        if serving is not None:
            done = asyncio.run_coroutine_threadsafe(
                stop_serving(serving, self.config.shutdown_grace), loop
            )
            done.result(timeout=self.config.shutdown_grace + 30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._serving = None

    def __enter__(self) -> GatewayServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def startup_line(config: Config, url: str, app: App) -> str:
    """One line: where it listens, the backends (redacted), the templates loaded."""
    gw = app[GATEWAY_KEY]
    if config.backends:
        backends = ", ".join(
            f"{b.name} ({b.kind} {b.base_url}"
            + (f", key from ${b.key_env}" if b.key_env and not b.key else "")
            + (" NOT SET" if b.name in gw.keyless else "")
            + (", key inline" if b.key else "")
            + (", passthrough" if b.auth == "passthrough" else "")
            + ")"
            for b in config.backends
        )
    else:
        backends = (
            "none (add one: driftgate backend add NAME --kind anthropic|openai --key-env VAR)"
        )
    templates = ", ".join(f"{t['name']} {t['version']}" for t in gw.store.current().summary())
    workers = f" ({config.worker_processes} workers)" if config.worker_processes > 1 else ""
    everywhere = ""  # the URL shown is loopback's: a wildcard bind says that it is not all
    if config.host in WILDCARD_HOSTS:
        everywhere = f" and every other address (bound to {config.host or '0.0.0.0'})"
    database = gw.observer.database
    analytics = ""
    if database is not None:  # the URL with its password masked
        state = "" if database.connected else " (unreachable)"
        analytics = f" | analytics: {database.shown}{state}"
    return (
        f"driftgate {__version__} listening on {url}{everywhere}{workers} | backends: {backends} | "
        f"templates: {templates}{analytics}"
    )


def run_forever(
    config: Config,
    load: Callable[[], Config] | None = None,
    link: socket.socket | None = None,
) -> None:
    """`driftgate proxy`: serve in the foreground until Ctrl-C, one log line per request at info.

    `load` re-reads the config on SIGHUP. `link` makes this process a worker of a supervisor
    (`--workers N`): it shares the port (SO_REUSEPORT), tells the supervisor it listens over the
    link, leaves Ctrl-C to the supervisor and drains when the supervisor goes away.
    """
    check_listen(config)
    new_loop = loop_factory(config.event_loop)
    worker = link is not None
    setup_logging(config.log_level, config.log_format, worker=worker)

    async def main() -> None:
        app = create_app(config)
        gw = app[GATEWAY_KEY]
        redacting = RedactingFilter(gw.redactor)
        for handler in logging.getLogger().handlers:  # every logger's records, aiohttp's included
            handler.addFilter(redacting)
        serving = await _start_site(config, app, reuse_port=worker)
        _settle_heap()
        fd_warning = ensure_fd_limit(config.max_connections)
        if fd_warning:
            log.warning("%s", fd_warning)
        line = startup_line(config, _url(config.host, serving.port), app)
        stop = asyncio.Event()
        drain = gw.drain
        loop = asyncio.get_running_loop()

        def on_signal() -> None:  # the first one drains; a second one cuts what is left now
            if stop.is_set():
                drain.cut_now()
            stop.set()

        reloading: list[asyncio.Task[None]] = []

        def on_hangup() -> None:
            if load is not None:
                reloading.append(loop.create_task(_reload(gw, load, quiet_notes=worker)))

        for sig, react in ((signal.SIGTERM, on_signal), (signal.SIGHUP, on_hangup)):
            with contextlib.suppress(NotImplementedError, RuntimeError, AttributeError):
                loop.add_signal_handler(sig, react)
        if link is None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGINT, on_signal)
            print(line, flush=True)
        else:
            link.setblocking(False)
            await loop.sock_sendall(link, b"ready " + line.encode() + b"\n")
            loop.add_reader(link.fileno(), _on_link, link, on_signal)
        try:
            await stop.wait()
        finally:
            if link is not None:
                loop.remove_reader(link.fileno())
            await stop_serving(serving, gw.config.shutdown_grace)

    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            runner.run(main())
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise _listen_error(config, exc) from exc
    if link is None:
        print("driftgate: stopped", file=sys.stderr)


def _on_link(link: socket.socket, stop: Callable[[], None]) -> None:
    """The supervisor's end of the link closed (it exited or died): drain and stop."""
    try:
        data = link.recv(4096)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(link.fileno())
        log.warning("the supervisor went away: stopping")
        stop()


async def _reload(gw: Gateway, load: Callable[[], Config], *, quiet_notes: bool = False) -> None:
    """SIGHUP: re-read the config and the templates; a config that does not load changes nothing."""
    try:
        new = await asyncio.to_thread(load)
        notes = gw.reload(new)
    except ConfigError as exc:
        log.error("reload refused, the running config stays in force: %s", exc)
        return
    except Exception:  # a reload must never take a serving gateway down
        log.exception("reload failed, the running config stays in force")
        return
    for note in notes:  # a worker's supervisor has said these once for all workers
        log.log(logging.DEBUG if quiet_notes else logging.WARNING, "reload: %s", note)
    templates = ", ".join(f"{t['name']} {t['version']}" for t in gw.store.current().summary())
    log.info(
        "reloaded %s: backends %s | templates: %s",
        new.path,
        ", ".join(b.name for b in gw.config.backends) or "none",
        templates,
    )


def _settle_heap() -> None:
    """Keep the cyclic collector off the request path: it cost ~16 us a request at defaults."""
    # Start-up objects (templates, schemas, imports) never become garbage: stop re-scanning them.
    gc.collect()
    gc.freeze()
    # A request allocates a few hundred objects that refcounting frees; at the default gen-0
    # threshold (700) the collector ran every few requests. 50,000: ~141 us/req, as with GC off.
    gc.set_threshold(50_000, 20, 100)


def _listen_error(config: Config, exc: OSError) -> ConfigError:
    return ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")
