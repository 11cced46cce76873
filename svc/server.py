"""uvicorn under svc: one server's settings, serving one socket, its quiet close, and the loop beside the signals."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import uvicorn
import uvloop

from svc.cli import EXIT_FAILURE, EXIT_OK
from svc.config import Config
from svc.edge import Edge, protocol_class
from svc.listener import BACKLOG, drain_accept_queue

__all__ = [
    "QUIET_CLOSE_TIMEOUT",
    "Main",
    "close_quietly",
    "run_server",
    "serve_socket",
    "uvicorn_server",
    "watch_stop",
]

log = logging.getLogger("svc.main")

UVICORN_LOG_LEVEL = "warning"
# Longest wait for the accept queue to empty (and its connections to be read) before a listener closes.
QUIET_CLOSE_TIMEOUT = 1.0

# What run_server runs on its event loop: the whole service, stopped through the event it is handed.
Main = Callable[[threading.Event], Coroutine[Any, Any, int]]


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


async def serve_socket(server: uvicorn.Server, sock: socket.socket) -> int:
    """Serve sock until the server is told to exit; the exit code it ended with."""
    try:
        await server.serve(sockets=[sock])
    except SystemExit as exc:  # uvicorn exits this way when the app's startup hook fails
        return int(exc.code or EXIT_FAILURE)
    return EXIT_OK if server.started else EXIT_FAILURE


async def close_quietly(server: uvicorn.Server, sock: socket.socket, edge: Edge) -> None:
    """Refuse new connections, accept and read the queued ones, then tell uvicorn to close and finish.

    Closing a listener resets every connection still in its accept queue: clients that had connected and
    sent a request see ECONNRESET for a request nobody read (uvloop accepts one connection per loop turn).
    """
    left = await drain_accept_queue(sock, lambda: len(edge.fresh), QUIET_CLOSE_TIMEOUT)
    if left:
        log.warning("%d queued connection(s) still unread after %.1f s; closing anyway", left, QUIET_CLOSE_TIMEOUT)
    server.should_exit = True


async def watch_stop(stop: threading.Event) -> None:
    """Return once `stop` is set (by a signal handler or a test, from another thread)."""
    # A threading.Event cannot be awaited; polling it keeps no thread parked in an executor at exit.
    while not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.02)


def _run_in_thread(main: Main, stop: threading.Event) -> int:
    result: list[int] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                result.append(runner.run(main(stop)))
        except BaseException as exc:  # handed to the main thread, which raises it as run() always did
            failure.append(exc)

    thread = threading.Thread(target=target, name="svc-loop")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def run_server(main: Main, stop: threading.Event | None = None) -> int:
    """Run main on a uvloop until it returns; SIGTERM/SIGINT (or `stop`) ask it to stop. A second signal exits at once.

    In the main thread the event loop runs in a thread of its own and the main thread owns the signals:
    uvicorn's serve() installs its own SIGTERM/SIGINT handlers only when it runs in the main thread, and
    those would skip the drain. Tests call this from another thread and stop it through `stop`.
    """
    if stop is not None or threading.current_thread() is not threading.main_thread():
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main(stop or threading.Event()))
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
        return _run_in_thread(main, stop)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
