"""Protocol-exact OTLP trace receivers (gRPC and HTTP/protobuf) that decode and keep what the service exports.

Both speak the real wire protocol of `opentelemetry.proto.collector.trace.v1`: the gRPC one serves
`TraceService/Export`, the HTTP one accepts `POST /v1/traces` with an `application/x-protobuf` body (gzip or
deflate when `Content-Encoding` says so) and answers with an `ExportTraceServiceResponse`.

Each can also misbehave, for the reliability tests:

- ``refuse``: nothing listens (the port is bound but not listening, so connections are refused at once);
- ``hang``: the request is accepted and never answered (until the receiver stops);
- ``500`` / ``503``: the export fails (gRPC: ``INTERNAL`` / ``UNAVAILABLE``; HTTP: that status code).

Every mode but ``refuse`` can be switched while running by assigning ``receiver.mode``.

    with OtlpGrpcReceiver() as otlp:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.endpoint
        ...
        [server_span] = otlp.spans(name="GET /links/{slug}")
"""

from __future__ import annotations

import gzip
import socket
import threading
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, Self

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusProto

from tests.support.polling import wait_for

__all__ = [
    "Mode",
    "OtlpGrpcReceiver",
    "OtlpHttpReceiver",
    "ReceivedExport",
    "ReceivedSpan",
    "RefusingPort",
    "decode_request",
]

Mode = Literal["ok", "refuse", "hang", "500", "503"]
GRPC_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TRACES_PATH = "/v1/traces"
PROTOBUF = "application/x-protobuf"
_GRPC_ERRORS = {"500": grpc.StatusCode.INTERNAL, "503": grpc.StatusCode.UNAVAILABLE}


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """One exported span, decoded: ids as lowercase hex, attributes and resource as plain Python values."""

    name: str
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    kind: str  # "SERVER", "CLIENT", "INTERNAL", "PRODUCER", "CONSUMER", "UNSPECIFIED"
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: str
    status: str  # "UNSET", "OK", "ERROR"
    event_names: tuple[str, ...]
    start_ns: int
    end_ns: int


@dataclass(frozen=True, slots=True)
class ReceivedExport:
    """One export call as it arrived: its headers (or gRPC metadata), encoding, and how many spans it carried."""

    headers: dict[str, str]
    content_encoding: str
    span_count: int
    mode: Mode


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs if isinstance(kv, KeyValue)}


def decode_request(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Every span of an export request, with its resource and instrumentation scope."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        name=span.name,
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        kind=SpanProto.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        attributes=_attributes(span.attributes),
                        resource=resource,
                        scope=scope_spans.scope.name,
                        status=StatusProto.StatusCode.Name(span.status.code).removeprefix("STATUS_CODE_"),
                        event_names=tuple(event.name for event in span.events),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                    )
                )
    return spans


class _Collector:
    """What both receivers keep: decoded spans and one record per export attempt, safe across threads."""

    def __init__(self, mode: Mode) -> None:
        self.mode: Mode = mode
        self._lock = threading.Lock()
        self._spans: list[ReceivedSpan] = []
        self._exports: list[ReceivedExport] = []
        self._released = threading.Event()

    def _record(self, headers: dict[str, str], encoding: str, spans: list[ReceivedSpan], mode: Mode) -> None:
        with self._lock:
            self._exports.append(ReceivedExport(headers, encoding, len(spans), mode))
            if mode == "ok":
                self._spans.extend(spans)

    def _hang(self) -> None:
        # Held until the receiver stops, so a hanging backend never outlives its test.
        self._released.wait()

    def all_spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order (no waiting)."""
        with self._lock:
            return list(self._spans)

    def exports(self) -> list[ReceivedExport]:
        """Every export attempt so far, including those this receiver failed or left hanging."""
        with self._lock:
            return list(self._exports)

    def clear(self) -> None:
        """Forget what was received."""
        with self._lock:
            self._spans.clear()
            self._exports.clear()

    def spans(
        self,
        name: str | None = None,
        *,
        trace_id: str | None = None,
        where: Callable[[ReceivedSpan], bool] | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> list[ReceivedSpan]:
        """Wait until at least `count` received spans match, then return all that match (AssertionError on timeout)."""

        def matching() -> list[ReceivedSpan]:
            return [
                s
                for s in self.all_spans()
                if (name is None or s.name == name)
                and (trace_id is None or s.trace_id == trace_id)
                and (where is None or where(s))
            ]

        wait_for(
            lambda: len(matching()) >= count,
            timeout,
            what=f"{count} span(s) named {name!r} in trace {trace_id!r}; received {[s.name for s in self.all_spans()]}",
        )
        return matching()


def _reserve_refusing_port(host: str) -> socket.socket:
    # Bound but never listening: the port stays ours and every connection attempt is refused at once.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    return sock


class RefusingPort:
    """A loopback port where nothing listens (any protocol's dead endpoint), reserved while in use."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._sock = _reserve_refusing_port(host)
        self.port: int = self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        """http://host:port of the dead endpoint."""
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Release the port."""
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OtlpGrpcReceiver(_Collector):
    """An OTLP/gRPC trace receiver (insecure, on a free loopback port). Use as a context manager."""

    def __init__(self, mode: Mode = "ok", host: str = "127.0.0.1") -> None:
        super().__init__(mode=mode)
        self.host = host
        self.port = 0
        self._server: grpc.Server | None = None
        self._refusing: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (gRPC uses it as is)."""
        return f"http://{self.host}:{self.port}"

    def _export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        mode = self.mode
        headers = {key: str(value) for key, value in context.invocation_metadata()}
        spans = decode_request(request)
        self._record(headers, headers.get("grpc-encoding", "identity"), spans, mode)
        if mode == "hang":
            self._hang()
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped")
        if mode in _GRPC_ERRORS:
            context.abort(_GRPC_ERRORS[mode], f"receiver told to fail with {mode}")
        return ExportTraceServiceResponse()

    def start(self) -> Self:
        """Start serving (or, in refuse mode, only reserve the port)."""
        if self.mode == "refuse":
            self._refusing = _reserve_refusing_port(self.host)
            self.port = self._refusing.getsockname()[1]
            return self
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        server = grpc.server(ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-grpc"))
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GRPC_SERVICE, {"Export": handler})])
        self.port = server.add_insecure_port(f"{self.host}:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Release hanging calls and stop serving."""
        self._released.set()
        if self._server is not None:
            self._server.stop(grace=1).wait(5)
            self._server = None
        if self._refusing is not None:
            self._refusing.close()
            self._refusing = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _OtlpHttpHandler(BaseHTTPRequestHandler):
    server: _OtlpHttpServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # as the Collector (Go's net/http) answers: no 40 ms delayed-ACK stall

    def do_POST(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.split("?", 1)[0] != receiver.path:
            self._answer(404, b"")
            return
        mode = receiver.mode
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        headers = {key.lower(): value for key, value in self.headers.items()}
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if content_type != PROTOBUF:
            receiver._record(headers, encoding, [], mode)
            self._answer(415, b"")
            return
        try:
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "deflate":
                body = zlib.decompress(body)
            elif encoding != "identity":
                raise ValueError(f"unsupported Content-Encoding {encoding}")
            spans = decode_request(ExportTraceServiceRequest.FromString(body))
        except (OSError, zlib.error, ValueError, DecodeError):
            receiver._record(headers, encoding, [], mode)
            self._answer(400, b"")
            return
        receiver._record(headers, encoding, spans, mode)
        if mode == "hang":
            receiver._hang()
            self.close_connection = True
            return
        if mode in ("500", "503"):
            self._answer(int(mode), b"")
            return
        self._answer(200, ExportTraceServiceResponse().SerializeToString())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _OtlpHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: OtlpHttpReceiver) -> None:
        super().__init__(address, _OtlpHttpHandler)
        self.receiver = receiver


class OtlpHttpReceiver(_Collector):
    """An OTLP/HTTP (binary protobuf) trace receiver on a free loopback port. Use as a context manager."""

    def __init__(self, mode: Mode = "ok", host: str = "127.0.0.1", path: str = TRACES_PATH) -> None:
        super().__init__(mode=mode)
        self.host = host
        self.path = path
        self.port = 0
        self._server: _OtlpHttpServer | None = None
        self._thread: threading.Thread | None = None
        self._refusing: socket.socket | None = None

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, to which exporters append /v1/traces."""
        return f"http://{self.host}:{self.port}"

    @property
    def traces_endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL, used as is."""
        return f"{self.endpoint}{self.path}"

    def start(self) -> Self:
        """Start serving (or, in refuse mode, only reserve the port)."""
        if self.mode == "refuse":
            self._refusing = _reserve_refusing_port(self.host)
            self.port = self._refusing.getsockname()[1]
            return self
        self._server = _OtlpHttpServer((self.host, 0), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="otlp-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop serving."""
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
