"""Scripted loopback peers for the exporters' unit tests: a real grpcio TraceService and a real HTTP/1.1 endpoint.

Each answers from a script the test writes (a gRPC status, a partial success, an HTTP status with headers, a
silent close, a hang), then with success; each records what it received. The end-to-end tests use the fake
backends instead: these exist to put one exporter behaviour at a time in front of a real protocol peer.
"""

from __future__ import annotations

import ssl
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

__all__ = ["HttpAnswer", "ScriptedHttp", "ScriptedTraceService", "span_names"]

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
HOLD_LIMIT = 10.0  # a held request is answered after this long even if the test never releases it


def span_names(request: ExportTraceServiceRequest) -> list[str]:
    """The names of every span in one export request, in order."""
    return [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


class _Held:
    """Requests wait while held; release() lets them (and all later ones) through."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()

    def hold(self) -> None:
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def wait(self) -> None:
        self._open.wait(HOLD_LIMIT)


class ScriptedTraceService(_Held):
    """An OTLP/gRPC TraceService on 127.0.0.1; each Export takes the next scripted answer: a StatusCode to fail
    with, or a count of spans to report rejected (partial success); an empty script answers plain success."""

    def __init__(self, credentials: grpc.ServerCredentials | None = None) -> None:
        super().__init__()
        self.script: deque[grpc.StatusCode | int] = deque()
        self.requests: list[ExportTraceServiceRequest] = []
        self.metadata: list[dict[str, str]] = []
        self._lock = threading.Lock()
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        self._server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self._server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": handler})]
        )
        address = "127.0.0.1:0"
        self.port = (
            self._server.add_secure_port(address, credentials)
            if credentials is not None
            else self._server.add_insecure_port(address)
        )
        self._server.start()

    @property
    def endpoint(self) -> str:
        """The endpoint as OTEL_EXPORTER_OTLP_ENDPOINT would name it."""
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[list[str]]:
        """The span names of each request received so far."""
        with self._lock:
            return [span_names(request) for request in self.requests]

    def _export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        with self._lock:
            self.requests.append(request)
            self.metadata.append({k: str(v) for k, v in context.invocation_metadata()})
            answer = self.script.popleft() if self.script else 0
        self.wait()
        if isinstance(answer, grpc.StatusCode):
            context.abort(answer, f"scripted {answer.name}")
        if answer:
            return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(rejected_spans=answer))
        return ExportTraceServiceResponse()

    def close(self) -> None:
        """Let held requests go, then stop at once."""
        self.release()
        self._server.stop(0)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """One scripted HTTP answer; `close` drops the connection after it without saying so (no Connection: close)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    close: bool = False


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request as the endpoint read it."""

    path: str
    headers: dict[str, str]
    body: bytes


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a held request is what the test wanted, not a traceback on stderr


class ScriptedHttp(_Held):
    """An HTTP/1.1 endpoint on 127.0.0.1 (HTTPS with `context`) answering each POST with the next scripted
    HttpAnswer (else a plain 200), counting the connections it accepted."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        super().__init__()
        self.script: deque[HttpAnswer] = deque()
        self.requests: list[HttpRequest] = []
        self.connections = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                endpoint.connections += 1

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                endpoint.requests.append(HttpRequest(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                answer = endpoint.script.popleft() if endpoint.script else HttpAnswer()
                endpoint.wait()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                self.close_connection = answer.close

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._scheme = "http" if context is None else "https"
        if context is not None:
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/") -> str:
        """http(s)://127.0.0.1:port plus path."""
        return f"{self._scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        """Let held requests go, then stop serving."""
        self.release()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
