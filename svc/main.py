"""The tiny main: parse config, set up logging, build the apps, serve them, drain on a signal, return an exit code."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import IO

import orjson
import uvicorn
import uvloop

from svc.admin import create_admin_app
from svc.app import build_litestar, create_app
from svc.buildinfo import BuildInfo, read_build_info
from svc.cli import EXIT_CONFIG, EXIT_FAILURE, EXIT_OK, answer, version_line
from svc.config import Config, Getenv
from svc.db import Database
from svc.health import Lifecycle, Phase
from svc.logs import configure_logging
from svc.telemetry import Telemetry

__all__ = ["EXIT_CONFIG", "EXIT_FAILURE", "EXIT_OK", "openapi_document", "run", "tune_gc"]

log = logging.getLogger("svc.main")

# How long telemetry may take to flush at exit: bounded, so a dead collector cannot hold the process.
FLUSH_TIMEOUT = 3.0
STARTUP_TIMEOUT = 10.0
GC_GEN0_THRESHOLD = 7000
UVICORN_LOG_LEVEL = "warning"


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers: run() owns the signals and the shutdown sequence."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    # Binding here, not in uvicorn, tells us the port the OS picked for port 0 before anything is logged.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _server(app: object, config: Config) -> _Server:
    return _Server(
        uvicorn.Config(
            app,  # type: ignore[arg-type]
            lifespan="on",
            log_config=None,
            # uvicorn's info lines (started, waiting for startup, shutting down, finished) come once per server and
            # name neither listener: svc writes one line per listener and a summary instead, so uvicorn says only
            # what went wrong.
            log_level=UVICORN_LOG_LEVEL if config.log_level in ("debug", "info") else config.log_level,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=math.ceil(config.shutdown_timeout),
        )
    )


async def _serve_until_stopped(server: _Server, sock: socket.socket) -> int:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when the app's startup hook fails
        return int(exc.code or EXIT_FAILURE)
    return EXIT_OK if server.started else EXIT_FAILURE


async def _wait_started(servers: Sequence[_Server], tasks: Sequence[asyncio.Task[int]]) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_TIMEOUT
    while loop.time() < deadline:
        if all(s.started for s in servers):
            return True
        if any(t.done() for t in tasks):
            return False
        await asyncio.sleep(0.01)
    return False


def _install_signals(shutdown: asyncio.Event) -> None:
    if threading.current_thread() is not threading.main_thread():
        return  # tests run the service in a thread and stop it through the `stop` event instead
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if shutdown.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            logging.shutdown()
            os._exit(128 + signum)
        log.info("%s received: draining", signal.Signals(signum).name)
        shutdown.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)


async def _watch_stop(stop: threading.Event, shutdown: asyncio.Event) -> None:
    # A threading.Event cannot be awaited; polling it keeps no thread parked in an executor at exit.
    while not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    shutdown.set()


async def serve(config: Config, build: BuildInfo, stop: threading.Event | None = None) -> int:
    """Serve both listeners until a signal (or `stop`), then drain, finish in-flight requests and flush."""
    lifecycle = Lifecycle()
    telemetry = Telemetry.from_config(config, build)
    public = _server(create_app(config, telemetry=telemetry, lifecycle=lifecycle, build=build), config)
    admin = _server(create_admin_app(config, telemetry.metrics), config)
    try:
        public_sock = _bind(config.host, config.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.host, config.port, exc.strerror)
        return EXIT_FAILURE
    try:
        admin_sock = _bind(config.admin_host, config.admin_port)
    except OSError as exc:
        public_sock.close()
        log.error("cannot listen on %s:%d: %s", config.admin_host, config.admin_port, exc.strerror)
        return EXIT_FAILURE

    shutdown = asyncio.Event()
    _install_signals(shutdown)
    watcher = asyncio.create_task(_watch_stop(stop, shutdown)) if stop is not None else None
    tasks = [
        asyncio.create_task(_serve_until_stopped(public, public_sock)),
        asyncio.create_task(_serve_until_stopped(admin, admin_sock)),
    ]
    if not await _wait_started([public, admin], tasks):
        log.error("startup failed")
        for server in (public, admin):
            server.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
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
    public.should_exit = True
    public_code = await tasks[0]
    admin.should_exit = True
    admin_code = await tasks[1]
    stopped.cancel()
    if watcher is not None:
        watcher.cancel()
    await asyncio.to_thread(telemetry.shutdown, FLUSH_TIMEOUT)
    code = max(public_code, admin_code)
    log.info(
        "stopped: both listeners closed, exit code %d after %.1f s",
        code,
        lifecycle.uptime(),
        extra={"event.dataset": "svc.server"},
    )
    return code


def openapi_document(config: Config) -> bytes:
    """The OpenAPI document the code generates (what `svc openapi` prints and openapi.json must equal)."""
    build = read_build_info()
    telemetry = Telemetry.from_config(config.replace(otel_disabled=True), build)
    app = build_litestar(config, Lifecycle(), build, Database(":memory:"), telemetry)
    return orjson.dumps(app.openapi_schema.to_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def run(
    argv: Sequence[str],
    getenv: Getenv,
    stdout: IO[str],
    *,
    stderr: IO[str] | None = None,
    stop: threading.Event | None = None,
) -> int:
    """Run svc as the command line `argv` in the environment `getenv`; return the process exit code.

    Everything the service touches is passed in, so a test runs it for real: `run(["svc"], env.get, buf)`.
    Logs go to stdout, one JSON object per line; config errors go to stderr, one line per bad variable.
    """
    stderr = stderr or sys.stderr
    answered = answer(argv, getenv, stdout, stderr)
    if isinstance(answered, int):
        return answered
    config = answered.config
    if answered.name == "openapi":
        stdout.write(openapi_document(config).decode())
        return EXIT_OK
    build = read_build_info()
    configure_logging(config, build.version, stdout)
    log.info("%s starting, pid %d", version_line(build), os.getpid())
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(serve(config, build, stop))


def tune_gc() -> None:
    """GC settings for a process that is svc alone (tests calling run() in a thread keep theirs).

    A request allocates hundreds of container objects, so CPython's default gen0 threshold (700) ran a
    collection every couple of requests; the imported modules never die, so freezing them keeps them out of
    every full collection. Measured: 20-30 µs less CPU per request with full telemetry (bench/).
    """
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])
