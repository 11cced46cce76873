"""The fake backend over HTTP/1.x: each request recorded as it arrived, answered as the mode and a responder say.

As is, it is a scripted stand-in (Elasticsearch, Kibana, an ingest endpoint): `respond(request) -> Reply` says what
the ``ok`` mode answers. Protocols (OTLP/HTTP, Sentry envelopes) subclass it and override `reply`.

    with HttpBackend(lambda request: Reply(200, {"acknowledged": True})) as es:
        ...
        [put] = es.requests()
"""

from __future__ import annotations

import functools
import json
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from harness.backends import FakeBackend, Mode, Records, hang_up

__all__ = ["HttpBackend", "HttpRequest", "Reply", "Responder"]


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as the backend saw it: method, target, headers (lowercase names), body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """What to answer: status, a JSON-able body (or raw bytes), its content type, extra headers.

    `close` ends the connection after the answer, as servers do when a request's body may be unread.
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    close: bool = False

    def payload(self) -> bytes:
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()


Responder = Callable[[HttpRequest], Reply]
TOLD_TO_FAIL = {"detail": "told to fail"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.closed(self.connection)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = HttpRequest(
            self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
        )
        reply = self.server.backend.reply(request)
        if reply is None:
            self.close_connection = True  # hang up without a word, as a backend that dies mid-request
            return
        payload = reply.payload()
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
        if reply.close:
            self.close_connection = True

    # http.server dispatches on these exact names.
    do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        return


@functools.cache
def _handler(http_version: str, nodelay: bool) -> type[_Handler]:
    """The handler class speaking this HTTP version, with or without TCP_NODELAY (http.server reads both off it)."""
    attributes = {"protocol_version": http_version, "disable_nagle_algorithm": nodelay}
    return cast(type[_Handler], type(f"Handler{http_version[5:]}", (_Handler,), attributes))


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: HttpBackend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()
        super().__init__(address, _handler(backend.http_version, backend.nodelay))

    def opened(self, conn: socket.socket) -> None:
        with self._lock:
            self._live.add(conn)
            self.backend.connections += 1

    def closed(self, conn: socket.socket) -> None:
        with self._lock:
            self._live.discard(conn)

    def hang_up_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for conn in live:
            hang_up(conn)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up on a backend that never answers is the point, not an error worth a traceback


class HttpBackend(FakeBackend):
    """A threaded HTTP/1.1 server (keep-alive, TCP_NODELAY as Go's net/http answers) on a loopback port.

    `keep=False` keeps no request records (long benchmark runs); `received` still counts them. With `tls` it
    serves HTTPS; `connections` counts the connections it accepted.
    """

    http_version = "HTTP/1.1"
    nodelay = True  # without it, a body written after its headers waits for the client's delayed ACK: 40 ms

    def __init__(
        self,
        respond: Responder | None = None,
        mode: Mode = "ok",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        keep: bool = True,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(mode, host=host, port=port)
        self.keep = keep
        self.tls = tls
        self.scheme = "http" if tls is None else "https"
        self.received = 0
        self.connections = 0
        self._respond = respond or (lambda _request: Reply(200, {}))
        self._requests: Records[HttpRequest] = Records()
        self._count = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def requests(self) -> Sequence[HttpRequest]:
        """Every request recorded so far, in arrival order."""
        return self._requests.all()

    def wait_requests(self, count: int = 1, timeout: float = 10.0) -> Sequence[HttpRequest]:
        """Every request recorded, once there are at least `count` (AssertionError after timeout s)."""
        return self._requests.wait_count(count, timeout, "request(s)")

    def record(self, request: HttpRequest) -> None:
        """Count the request, and keep it unless told not to."""
        with self._count:
            self.received += 1
        if self.keep:
            self._requests.add(request)

    def reply(self, request: HttpRequest) -> Reply | None:
        """The answer to one request (None: hang up): recorded, then answered as the mode says."""
        self.record(request)
        mode = self.settle()
        if mode is None:
            return None
        return self.answer(request) if mode == "ok" else self.failure(int(mode))

    def answer(self, request: HttpRequest) -> Reply:
        """The answer in the ok mode: the responder's."""
        return self._respond(request)

    def failure(self, status: int) -> Reply:
        """The answer in the 500 and 503 modes."""
        return Reply(status, TOLD_TO_FAIL)

    def _serve(self, port: int) -> int:
        self._server = _Server((self.host, port), self)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        # A short poll interval, so stop() (server.shutdown) returns in milliseconds rather than half a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=type(self).__name__, daemon=True
        )
        self._thread.start()
        bound: int = self._server.server_address[1]
        return bound

    def _unserve(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.hang_up_all()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class ScriptedServer(HttpBackend):
    """The lab's stand-in for Elasticsearch, Kibana, Jaeger's query API and the rest: `respond` scripts each answer.

    It answers as a plain stdlib http.server does (HTTP/1.0: one request a connection, Nagle on), which is what the
    lab's scripts and a real Fluent Bit were run against.
    """

    http_version = "HTTP/1.0"
    nodelay = False
