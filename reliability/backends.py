"""Telemetry backends that misbehave on purpose, and the environment that points svc at them.

The OTLP receivers are the telemetry suite's protocol-exact ones (tests/telemetry/receivers.py: gRPC and
HTTP/protobuf, modes ok/refuse/hang/500/503). The healthy Sentry receiver is the lab's sink
(tests/telemetry/sentry.py). What was missing is a Sentry endpoint that fails, which is here: it refuses
connections, accepts and never answers, or answers 500/503 to every envelope.
"""

from __future__ import annotations

import socket
import threading
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

from tests.peers.sentry import load_sink
from tests.telemetry.receivers import Mode, OtlpGrpcReceiver, OtlpHttpReceiver
from tests.telemetry.sentry import SentryReceiver

__all__ = ["FAULT_MODES", "FaultySentry", "Mode", "RestartableSentry", "otlp_receiver", "sentry_backend"]

FAULT_MODES: tuple[Mode, ...] = ("refuse", "hang", "500", "503")
SENTRY_KEY = "reliability"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        backend = self.server.backend
        with backend._lock:
            backend.requests += 1
        if backend.mode == "hang":
            backend._released.wait()
            self.close_connection = True
            return
        body = b'{"detail":"told to fail"}'
        self.send_response(int(backend.mode) if backend.mode in ("500", "503") else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: FaultySentry) -> None:
        super().__init__(address, _Handler)
        self.backend = backend

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # svc hanging up on a backend that never answers is the point, not an error worth a traceback


class FaultySentry:
    """A Sentry ingest endpoint on a free loopback port that refuses, hangs, or answers 500/503."""

    def __init__(self, mode: Literal["refuse", "hang", "500", "503"], host: str = "127.0.0.1") -> None:
        self.mode = mode
        self.host = host
        self.port = 0
        self.requests = 0  # envelopes that reached it (none when refusing)
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._refusing: socket.socket | None = None

    @property
    def dsn(self) -> str:
        """The SENTRY_DSN pointing here."""
        return f"http://{SENTRY_KEY}@{self.host}:{self.port}/1"

    def start(self) -> Self:
        if self.mode == "refuse":
            # Bound but never listening: every connection attempt is refused at once, and the port stays ours.
            self._refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._refusing.bind((self.host, 0))
            self.port = self._refusing.getsockname()[1]
            return self
        self._server = _Server((self.host, 0), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="faulty-sentry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def otlp_receiver(protocol: Literal["grpc", "http/protobuf"], mode: Mode) -> OtlpGrpcReceiver | OtlpHttpReceiver:
    """An OTLP trace receiver speaking `protocol`, behaving as `mode` (not started)."""
    return OtlpGrpcReceiver(mode) if protocol == "grpc" else OtlpHttpReceiver(mode)


def sentry_backend(mode: Mode) -> AbstractContextManager[FaultySentry | SentryReceiver]:
    """The lab's Sentry sink when mode is "ok", else a FaultySentry in that mode (not started)."""
    if mode == "ok":
        return SentryReceiver(key=SENTRY_KEY)
    return FaultySentry(mode)


class RestartableSentry:
    """The lab's Sentry sink on a fixed loopback port that can die (stop: connections refused) and come back.

    Events received before a stop are kept across restarts, so a run can count them all.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._sink: Any = None
        self.events_before_restarts = 0

    @property
    def dsn(self) -> str:
        return f"http://{SENTRY_KEY}@{self.host}:{self.port}/1"

    @property
    def running(self) -> bool:
        return self._sink is not None

    def start(self) -> Self:
        self._sink = load_sink().SentrySink(host=self.host, port=self.port, key=SENTRY_KEY, max_events=100_000)
        self.port = self._sink.server.server_address[1]
        self._sink.start()
        return self

    def stop(self) -> None:
        if self._sink is not None:
            self.events_before_restarts += len(self._sink.events())
            self._sink.stop()
            self._sink = None

    def events_received(self) -> int:
        return self.events_before_restarts + (len(self._sink.events()) if self._sink is not None else 0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
