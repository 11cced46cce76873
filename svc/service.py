"""The composition root: svc assembled once from Config, and its lifecycle as named steps in their order."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from litestar import Litestar
from litestar.types import ASGIApp

from svc.admin import create_admin_app
from svc.app import build_litestar, public_app
from svc.buildinfo import BuildInfo, read_build_info
from svc.cli import EXIT_FAILURE, EXIT_OK
from svc.config import Config
from svc.edge import Edge, connection_budget, watch_fds
from svc.health import Lifecycle, Phase
from svc.listener import bind
from svc.metrics import Metrics
from svc.server import close_quietly, serve_socket, uvicorn_server, watch_stop
from svc.store import Store
from svc.stores import create_store
from svc.telemetry import Telemetry

__all__ = [
    "ADMIN_CONNECTIONS",
    "FLUSH_TIMEOUT",
    "STARTUP_TIMEOUT",
    "AppFactory",
    "Listener",
    "Parts",
    "Service",
    "bare_app",
    "create_app",
    "svc_app",
]

log = logging.getLogger("svc.main")

# How long telemetry may take to flush at exit: bounded, so a dead collector cannot hold the process.
FLUSH_TIMEOUT = 3.0
# How long both servers get to start (the store opens in the public app's startup hook).
STARTUP_TIMEOUT = 10.0
# The admin listener serves scrapes and probes: a few connections, capped apart from the public ones.
ADMIN_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class Parts:
    """What every app of one service is made of, built once: both listeners share the same instances."""

    config: Config
    build: BuildInfo
    telemetry: Telemetry
    lifecycle: Lifecycle
    store: Store


# What the public listener serves, made from the service's parts.
AppFactory = Callable[[Parts], ASGIApp]


def svc_app(parts: Parts) -> ASGIApp:
    """svc's public app: every route under svc's middleware (what `python -m svc` serves)."""
    return public_app(parts.config, parts.lifecycle, parts.build, parts.store, parts.telemetry)


def bare_app(parts: Parts) -> Litestar:
    """svc's routes in svc's Litestar app without svc's middleware: the benchmark's ceiling, the OpenAPI source."""
    return build_litestar(parts.config, parts.lifecycle, parts.build, parts.store, parts.telemetry)


def _edge(name: str, config: Config, max_connections: int, metrics: Metrics) -> Edge:
    return Edge(
        listener=name,
        max_head_bytes=config.max_header_bytes,
        max_headers=config.max_headers,
        header_timeout=config.header_timeout,
        max_connections=max_connections,
        rejected=metrics.edge_rejected,
    )


@dataclass
class Listener:
    """One listener: where it binds, its edge limits, its uvicorn server; once started, its socket and task."""

    name: str
    host: str
    port: int
    edge: Edge
    server: uvicorn.Server
    sock: socket.socket | None = None
    # Where it listens, read at bind (the port the OS chose for port 0; uvicorn takes the socket over).
    address: tuple[str, int] | None = None
    task: asyncio.Task[int] | None = None

    def bind(self) -> bool:
        """Open the listening socket; False (logged) when the address cannot be had."""
        try:
            self.sock = bind(self.host, self.port)
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", self.host, self.port, exc.strerror)
            return False
        address, port = self.sock.getsockname()[:2]
        self.address = (address, port)
        return True

    async def close(self) -> int:
        """Close quietly if it serves, let its in-flight requests finish, and return its server's exit code."""
        if self.task is None:
            # Bound but never served (the other listener failed to bind): nobody else will close the socket.
            if self.sock is not None:
                self.sock.close()
            return EXIT_OK
        if self.task.done():
            return self.task.result()  # the server exited by itself: nothing left to close
        if self.server.started and self.sock is not None:
            await close_quietly(self.server, self.sock, self.edge)
        else:
            self.server.should_exit = True  # still starting: there is no accept queue worth draining yet
        return await self.task


class Service:
    """svc, assembled once from its Config: one Telemetry, Lifecycle and store, the apps, both listeners.

    `run(stop)` is the whole life: start, serve, drain, stop, flush. Each step is a public method, so a test or the
    benchmark can run them one by one; every way out of `run` (a port taken, a failed startup, a stop request, a
    server that exits by itself) goes through the same stop and flush.
    """

    def __init__(
        self,
        config: Config,
        build: BuildInfo | None = None,
        *,
        telemetry: Telemetry | None = None,
        lifecycle: Lifecycle | None = None,
        store: Store | None = None,
        app: AppFactory = svc_app,
    ) -> None:
        build = build or read_build_info()
        if telemetry is None:
            telemetry = Telemetry.from_config(config, build)
        if store is None:
            store = create_store(config, telemetry.tracer, telemetry.metrics)
        self.parts = Parts(config, build, telemetry, lifecycle or Lifecycle(), store)
        self.app = app(self.parts)
        self.admin_app = create_admin_app(config, telemetry.metrics)
        # The public cap must leave room in the fd table for the admin connections and the process's own files.
        self.connection_budget = connection_budget(config.max_connections, reserved=ADMIN_CONNECTIONS)
        public_edge = _edge("public", config, self.connection_budget, telemetry.metrics)
        admin_edge = _edge("admin", config, ADMIN_CONNECTIONS, telemetry.metrics)
        self.public = Listener(
            "public", config.host, config.port, public_edge, uvicorn_server(self.app, config, public_edge)
        )
        self.admin = Listener(
            "admin",
            config.admin_host,
            config.admin_port,
            admin_edge,
            uvicorn_server(self.admin_app, config, admin_edge),
        )
        self._watchers: list[asyncio.Task[None]] = []

    @property
    def listeners(self) -> tuple[Listener, Listener]:
        """Public first, admin second: the order they start in and close in."""
        return self.public, self.admin

    async def run(self, stop: threading.Event) -> int:
        """The whole life: start, serve until `stop` (or a server exits), drain, stop, flush; the exit code."""
        started = False
        try:
            started = await self.start()
            if started:
                await self.drain(requested=await self.serve(stop))
        finally:
            # Whatever happened above, the listeners close and telemetry flushes the same way.
            code = await self.stop()
            await self.flush()
        code = code if started else EXIT_FAILURE
        log.info(
            "stopped: both listeners closed, exit code %d after %.1f s",
            code,
            self.parts.lifecycle.uptime(),
            extra={"event.dataset": "svc.server"},
        )
        return code

    async def start(self) -> bool:
        """Bind both listeners, start both servers, wait until both have started; False (logged) if any fails."""
        config = self.parts.config
        if self.connection_budget < config.max_connections:
            log.warning(
                "MAX_CONNECTIONS=%d does not fit the fd limit; capped at %d",
                config.max_connections,
                self.connection_budget,
            )
        # Both sockets before either server runs: a taken port (the common failure) is found before any request is
        # served, and no listener ever answers while the other one cannot exist.
        if not all(listener.bind() for listener in self.listeners):
            return False
        self._watchers.append(asyncio.create_task(watch_fds()))
        for listener in self.listeners:
            assert listener.sock is not None
            listener.task = asyncio.create_task(serve_socket(listener.server, listener.sock))
        # uvicorn's startup runs the app's startup hook (the store opens there); "listener on" is said only once
        # both servers accept, so a line that names a port means the port answers.
        if not await self._started():
            log.error("startup failed")
            return False
        for listener in self.listeners:
            assert listener.address is not None
            address, port = listener.address
            extra = {"server.address": address, "server.port": port, "labels.listener": listener.name}
            log.info("%s listener on http://%s:%d", listener.name, address, port, extra=extra)
        return True

    async def serve(self, stop: threading.Event) -> bool:
        """Serve until `stop` is set or a server exits by itself; True when it was asked to stop."""
        stopped = asyncio.create_task(watch_stop(stop))
        tasks = [listener.task for listener in self.listeners if listener.task is not None]
        await asyncio.wait([stopped, *tasks], return_when=asyncio.FIRST_COMPLETED)
        requested = stopped.done()
        stopped.cancel()
        return requested

    async def drain(self, *, requested: bool) -> None:
        """Fail readiness, then (when asked to stop) wait SHUTDOWN_DRAIN with both listeners still serving."""
        # Readiness fails first, so load balancers stop sending before any listener closes.
        self.parts.lifecycle.phase = Phase.DRAINING
        # The wait lets load balancers notice a planned stop; a server that exited by itself is a failure, and the
        # process exits at once so its orchestrator can replace it.
        if requested and self.parts.config.shutdown_drain > 0:
            log.info("draining for %.1f s before closing listeners", self.parts.config.shutdown_drain)
            await asyncio.sleep(self.parts.config.shutdown_drain)

    async def stop(self) -> int:
        """Close the listeners quietly, public first, each after its in-flight requests finish; the worst exit code."""
        # Public first: the admin listener keeps answering scrapes and probes while public requests finish, so the
        # last metrics of the shutdown can still be read.
        codes = [await listener.close() for listener in self.listeners]
        return max(codes)

    async def flush(self) -> None:
        """Stop the watchers, then flush spans and error events, each bounded by FLUSH_TIMEOUT."""
        for watcher in self._watchers:
            watcher.cancel()
        # Last, once no request can make more telemetry; in a thread, because the exporters block while they send.
        await asyncio.to_thread(self.parts.telemetry.shutdown, FLUSH_TIMEOUT)

    async def _started(self) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while loop.time() < deadline:
            if all(listener.server.started for listener in self.listeners):
                return True
            if any(listener.task is not None and listener.task.done() for listener in self.listeners):
                return False
            await asyncio.sleep(0.01)
        return False

    def openapi_schema(self) -> dict[str, Any]:
        """The OpenAPI document of the public routes (what `svc openapi` prints)."""
        return bare_app(self.parts).openapi_schema.to_schema()


def create_app(
    config: Config,
    *,
    telemetry: Telemetry | None = None,
    lifecycle: Lifecycle | None = None,
    build: BuildInfo | None = None,
) -> ASGIApp:
    """A fresh public app, as Service assembles it (tests drive it with Litestar's TestClient)."""
    return Service(config, build, telemetry=telemetry, lifecycle=lifecycle).app
