"""Serving: both listeners under uvicorn, the edge limits, and the shutdown sequence (drain, quiet close, flush)."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Sequence

import uvicorn
import uvloop

from svc.admin import create_admin_app
from svc.app import create_app
from svc.buildinfo import BuildInfo
from svc.cli import EXIT_FAILURE, EXIT_OK
from svc.config import Config
from svc.edge import Edge, connection_budget, protocol_class, watch_fds
from svc.health import Lifecycle, Phase
from svc.listener import BACKLOG, bind, drain_accept_queue
from svc.metrics import Metrics
from svc.telemetry import Telemetry

__all__ = [
    "ADMIN_CONNECTIONS",
    "EXIT_FAILURE",
    "EXIT_OK",
    "FLUSH_TIMEOUT",
    "QUIET_CLOSE_TIMEOUT",
    "run_server",
    "serve",
]

log = logging.getLogger("svc.main")

# How long telemetry may take to flush at exit: bounded, so a dead collector cannot hold the process.
FLUSH_TIMEOUT = 3.0
STARTUP_TIMEOUT = 10.0
UVICORN_LOG_LEVEL = "warning"
# The admin listener serves scrapes and probes: a few connections, capped apart from the public ones.
ADMIN_CONNECTIONS = 64
# Longest wait for the accept queue to empty (and its connections to be read) before a listener closes.
QUIET_CLOSE_TIMEOUT = 1.0


def edge_for(name: str, config: Config, max_connections: int, metrics: Metrics) -> Edge:
    """One listener's edge limits from the config, counting its rejections in metrics."""
    return Edge(
        listener=name,
        max_head_bytes=config.max_header_bytes,
        max_headers=config.max_headers,
        header_timeout=config.header_timeout,
        max_connections=max_connections,
        rejected=metrics.edge_rejected,
    )


def uvicorn_server(app: object, config: Config, edge: Edge) -> uvicorn.Server:
    """uvicorn serving app through the edge protocol: svc's logging, no server header, svc's timeouts."""
    return uvicorn.Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            http=protocol_class(edge),
            lifespan="on",
            log_config=None,
            # uvicorn's info lines (started, waiting for startup, shutting down, finished) come once per server and
            # name neither listener: svc writes one line per listener and a summary instead, so uvicorn says only
            # what went wrong.
            log_level=UVICORN_LOG_LEVEL if config.log_level in ("debug", "info") else config.log_level,
            access_log=False,
            server_header=False,
            timeout_keep_alive=config.keepalive_timeout,
            backlog=BACKLOG,
            timeout_graceful_shutdown=math.ceil(config.shutdown_timeout),
        )
    )


async def _serve_until_stopped(server: uvicorn.Server, sock: socket.socket) -> int:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when the app's startup hook fails
        return int(exc.code or EXIT_FAILURE)
    return EXIT_OK if server.started else EXIT_FAILURE


async def _wait_started(servers: Sequence[uvicorn.Server], tasks: Sequence[asyncio.Task[int]]) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while loop.time() < deadline:
        if all(s.started for s in servers):
            return True
        if any(t.done() for t in tasks):
            return False
        await asyncio.sleep(0.01)
    return False


async def _watch_stop(stop: threading.Event, shutdown: asyncio.Event) -> None:
    # A threading.Event cannot be awaited; polling it keeps no thread parked in an executor at exit.
    while not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    shutdown.set()


async def _close_quietly(server: uvicorn.Server, sock: socket.socket, edge: Edge) -> None:
    """Refuse new connections, accept and read the queued ones, then tell uvicorn to close and finish.

    Closing a listener resets every connection still in its accept queue: clients that had connected and
    sent a request see ECONNRESET for a request nobody read (uvloop accepts one connection per loop turn).
    """
    left = await drain_accept_queue(sock, lambda: len(edge.fresh), QUIET_CLOSE_TIMEOUT)
    if left:
        log.warning("%d queued connection(s) still unread after %.1f s; closing anyway", left, QUIET_CLOSE_TIMEOUT)
    server.should_exit = True


async def serve(config: Config, build: BuildInfo, stop: threading.Event) -> int:
    """Serve both listeners until `stop` is set, then drain, finish in-flight requests and flush."""
    lifecycle = Lifecycle()
    telemetry = Telemetry.from_config(config, build)
    budget = connection_budget(config.max_connections, reserved=ADMIN_CONNECTIONS)
    if budget < config.max_connections:
        log.warning("MAX_CONNECTIONS=%d does not fit the fd limit; capped at %d", config.max_connections, budget)
    public_edge = edge_for("public", config, budget, telemetry.metrics)
    admin_edge = edge_for("admin", config, ADMIN_CONNECTIONS, telemetry.metrics)
    app = create_app(config, telemetry=telemetry, lifecycle=lifecycle, build=build)
    public = uvicorn_server(app, config, public_edge)
    admin = uvicorn_server(create_admin_app(config, telemetry.metrics), config, admin_edge)
    try:
        public_sock = bind(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return EXIT_FAILURE
    try:
        admin_sock = bind(config.admin_host, config.admin_port)
    except OSError as exc:
        public_sock.close()
        log.error("cannot listen on %s:%d: %s", config.admin_host, config.admin_port, exc.strerror)
        return EXIT_FAILURE

    shutdown = asyncio.Event()
    watcher = asyncio.create_task(_watch_stop(stop, shutdown))
    fds = asyncio.create_task(watch_fds())
    tasks = [
        asyncio.create_task(_serve_until_stopped(public, public_sock)),
        asyncio.create_task(_serve_until_stopped(admin, admin_sock)),
    ]
    if not await _wait_started([public, admin], tasks):
        log.error("startup failed")
        for server in (public, admin):
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        watcher.cancel()
        fds.cancel()
        await asyncio.to_thread(telemetry.shutdown, FLUSH_TIMEOUT)
        return EXIT_FAILURE
    for name, sock in (("public", public_sock), ("admin", admin_sock)):
        address, port = sock.getsockname()[:2]
        extra = {"server.address": address, "server.port": port, "labels.listener": name}
        log.info("%s listener on http://%s:%d", name, address, port, extra=extra)

    stopped = asyncio.create_task(shutdown.wait())
    await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
    # Drain: readiness fails first so load balancers stop sending, then the listeners close.
    lifecycle.phase = Phase.DRAINING
    if config.shutdown_drain > 0 and stopped.done():
        log.info("draining for %.1f s before closing listeners", config.shutdown_drain)
        await asyncio.sleep(config.shutdown_drain)
    await _close_quietly(public, public_sock, public_edge)
    public_code = await tasks[0]
    await _close_quietly(admin, admin_sock, admin_edge)
    admin_code = await tasks[1]
    stopped.cancel()
    watcher.cancel()
    fds.cancel()
    await asyncio.to_thread(telemetry.shutdown, FLUSH_TIMEOUT)
    code = max(public_code, admin_code)
    log.info(
        "stopped: both listeners closed, exit code %d after %.1f s",
        code,
        lifecycle.uptime(),
        extra={"event.dataset": "svc.server"},
    )
    return code


def _serve_in_thread(config: Config, build: BuildInfo, stop: threading.Event) -> int:
    result: list[int] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result.append(runner.run(serve(config, build, stop)))
        except BaseException as exc:  # handed to the main thread, which raises it as run() always did
            failure.append(exc)

    thread = threading.Thread(target=target, name="svc-loop")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def run_server(config: Config, build: BuildInfo, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or `stop`); return the exit code. A second signal exits at once.

    In the main thread the event loop runs in a thread of its own and the main thread owns the signals:
    uvicorn's serve() installs its own SIGTERM/SIGINT handlers only when it runs in the main thread, and
    those would skip the drain. Tests call this from another thread and stop it through `stop`.
    """
    if stop is not None or threading.current_thread() is not threading.main_thread():
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve(config, build, stop or threading.Event()))
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(128 + signum)
        log.info("%s received: draining", signal.Signals(signum).name)
        stop.set()

    previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _serve_in_thread(config, build, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
