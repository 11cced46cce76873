"""Cheap telemetry backends for the benchmark, each in its own process on the load-generator core.

- OTLP/gRPC receiver: accepts ExportTraceServiceRequest, counts the spans, discards them.
- Sentry sink: accepts any envelope POST with 200 and counts it.
- Blackhole: accepts TCP connections, reads and discards whatever arrives, never answers.
- Refusing endpoint: a port nothing listens on (connection refused at once); no process needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any

__all__ = ["Backends", "free_port", "running_backends"]

SENTRY_KEY = "benchkey"
_TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def free_port() -> int:
    """A TCP port that was free a moment ago (and that nothing listens on: connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pin(cpus: Iterable[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(cpus))


def _wait_for_term() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


def _otlp_main(port: int, cpus: list[int], spans: Synchronized[int], ready: Any) -> None:
    import grpc
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    _pin(cpus)
    empty = ExportTraceServiceResponse().SerializeToString()

    def export(request: ExportTraceServiceRequest, _context: grpc.ServicerContext) -> bytes:
        count = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with spans.get_lock():
            spans.value += count
        return empty

    handler = grpc.method_handlers_generic_handler(
        _TRACE_SERVICE,
        {
            "Export": grpc.unary_unary_rpc_method_handler(
                export,
                request_deserializer=ExportTraceServiceRequest.FromString,
                response_serializer=lambda body: body,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.max_receive_message_length", -1)])
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    ready.set()
    _wait_for_term()
    server.stop(0)


def _sentry_main(port: int, cpus: list[int], envelopes: Synchronized[int], ready: Any) -> None:
    _pin(cpus)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # as Sentry's ingestion answers: no 40 ms delayed-ACK stall

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            with envelopes.get_lock():
                envelopes.value += 1
            body = b"{}"
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready.set()
    _wait_for_term()
    server.shutdown()


def _blackhole_main(port: int, cpus: list[int], connections: Synchronized[int], ready: Any) -> None:
    _pin(cpus)

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with connections.get_lock():
            connections.value += 1
        try:
            while await reader.read(65536):
                pass  # read and discard; never write a byte back
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(swallow, "127.0.0.1", port, backlog=1024)
        ready.set()
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        async with server:
            await stop.wait()

    asyncio.run(serve())


@dataclass
class Backends:
    """Where the variants send telemetry, and the counters of what arrived."""

    otlp_port: int
    sentry_port: int
    blackhole_port: int
    refused_port: int
    spans: Synchronized[int]
    envelopes: Synchronized[int]
    blackhole_connections: Synchronized[int]

    def otlp_endpoint(self, mode: str) -> str:
        """The OTLP/gRPC endpoint for mode live|refused|blackhole."""
        return f"http://127.0.0.1:{self._port(mode, self.otlp_port)}"

    def sentry_dsn(self, mode: str) -> str:
        """A Sentry DSN for mode live|refused|blackhole."""
        return f"http://{SENTRY_KEY}@127.0.0.1:{self._port(mode, self.sentry_port)}/1"

    def _port(self, mode: str, live: int) -> int:
        return {"live": live, "refused": self.refused_port, "blackhole": self.blackhole_port}[mode]


@contextlib.contextmanager
def running_backends(cpus: list[int]) -> Iterator[Backends]:
    """Start the receiver, the sink and the blackhole (pinned to cpus); stop them on exit."""
    ctx = multiprocessing.get_context("spawn")
    backends = Backends(
        otlp_port=free_port(),
        sentry_port=free_port(),
        blackhole_port=free_port(),
        refused_port=free_port(),
        spans=ctx.Value("q", 0),
        envelopes=ctx.Value("q", 0),
        blackhole_connections=ctx.Value("q", 0),
    )
    targets: list[tuple[Callable[..., None], int, Synchronized[int]]] = [
        (_otlp_main, backends.otlp_port, backends.spans),
        (_sentry_main, backends.sentry_port, backends.envelopes),
        (_blackhole_main, backends.blackhole_port, backends.blackhole_connections),
    ]
    processes: list[SpawnProcess] = []
    try:
        for target, port, counter in targets:
            ready = ctx.Event()
            proc = ctx.Process(target=target, args=(port, cpus, counter, ready), daemon=True)
            proc.start()
            processes.append(proc)
            if not ready.wait(30):
                raise RuntimeError(f"backend {target.__name__} did not start")
        yield backends
    finally:
        for proc in processes:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)
        for proc in processes:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
