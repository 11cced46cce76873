"""Protocol-exact OTLP trace receivers (gRPC and HTTP/protobuf) that decode and keep what the service exports.

Both speak the real wire protocol of `opentelemetry.proto.collector.trace.v1`: the gRPC one serves
`TraceService/Export`, the HTTP one accepts `POST /v1/traces` with an `application/x-protobuf` body (gzip or
deflate when `Content-Encoding` says so) and answers with an `ExportTraceServiceResponse`. Both are fake backends
(harness.backends): in mode ``500`` / ``503`` the gRPC one aborts with ``INTERNAL`` / ``UNAVAILABLE``.

    with OtlpGrpcReceiver() as otlp:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.endpoint
        ...
        [server_span] = otlp.spans(name="GET /links/{slug}")
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status as StatusProto

from harness.backends import FakeBackend, Mode, Records
from harness.http_backend import HttpBackend, HttpRequest, Reply

__all__ = [
    "GRPC_SERVICE",
    "OtlpGrpcReceiver",
    "OtlpHttpReceiver",
    "OtlpReceiver",
    "ReceivedExport",
    "ReceivedSpan",
    "decode_request",
    "otlp_receiver",
]

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
    """One export call as it arrived: its headers (or gRPC metadata), encoding, how many spans, the mode it met."""

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


def _count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class OtlpReceiver:
    """What both receivers keep: decoded spans and one record per export attempt, safe across threads.

    With `keep=False` nothing is decoded or kept (a benchmark's receiver); `on_spans(n)` still hears each accepted
    export's span count.
    """

    def __init__(self, keep: bool, on_spans: Callable[[int], None] | None) -> None:
        self._keep = keep
        self._on_spans = on_spans
        self._spans: Records[ReceivedSpan] = Records()
        self._exports: Records[ReceivedExport] = Records()

    def _arrived(
        self, headers: dict[str, str], encoding: str, request: ExportTraceServiceRequest | None, mode: Mode
    ) -> list[ReceivedSpan]:
        """Record one export attempt; its decoded spans (none when not kept or undecodable)."""
        if not self._keep:
            return []
        spans = decode_request(request) if request is not None else []
        self._exports.add(ReceivedExport(headers, encoding, len(spans), mode))
        return spans

    def _accepted(self, request: ExportTraceServiceRequest, spans: list[ReceivedSpan]) -> None:
        """The export was answered with success: its spans count as received."""
        self._spans.add(*spans)
        if self._on_spans is not None:
            self._on_spans(_count(request))

    def all_spans(self) -> list[ReceivedSpan]:
        """Every span received so far, in arrival order (no waiting)."""
        return self._spans.all()

    def exports(self) -> list[ReceivedExport]:
        """Every export attempt so far, including those this receiver failed or left hanging."""
        return self._exports.all()

    def wait_exports(self, count: int = 1, timeout: float = 10.0) -> list[ReceivedExport]:
        """Every export attempt, once there are at least `count` (AssertionError after timeout s)."""
        return self._exports.wait_count(count, timeout, "export(s)")

    def clear(self) -> None:
        """Forget what was received."""
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

        def matching(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
            return [
                s
                for s in spans
                if (name is None or s.name == name)
                and (trace_id is None or s.trace_id == trace_id)
                and (where is None or where(s))
            ]

        found = self._spans.wait(lambda spans: len(matching(spans)) >= count, timeout)
        if not found:
            raise AssertionError(
                f"timed out after {timeout:.1f} s waiting for {count} span(s) named {name!r} in trace {trace_id!r};"
                f" received {[s.name for s in self.all_spans()]}"
            )
        return matching(self.all_spans())


class OtlpGrpcReceiver(OtlpReceiver, FakeBackend):
    """An OTLP/gRPC trace receiver on a free loopback port (TLS with `credentials`). Use as a context manager.

    `respond(request)` scripts the ok mode's answer: a response (say, a partial success) or a StatusCode to abort
    with. `workers` and `options` go to grpc.server (a benchmark lifts the 4 MiB message limit the Collector keeps).
    """

    def __init__(
        self,
        mode: Mode = "ok",
        host: str = "127.0.0.1",
        *,
        port: int = 0,
        keep: bool = True,
        on_spans: Callable[[int], None] | None = None,
        workers: int = 8,
        options: Sequence[tuple[str, Any]] = (),
        respond: Callable[[ExportTraceServiceRequest], ExportTraceServiceResponse | grpc.StatusCode] | None = None,
        credentials: grpc.ServerCredentials | None = None,
    ) -> None:
        OtlpReceiver.__init__(self, keep, on_spans)
        FakeBackend.__init__(self, mode, host=host, port=port)
        self.scheme = "http" if credentials is None else "https"
        self._respond = respond or (lambda _request: ExportTraceServiceResponse())
        self._credentials = credentials
        self._workers = workers
        self._options = list(options)
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT (gRPC uses it as is)."""
        return self.url

    def _export(self, request: ExportTraceServiceRequest, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        headers = {key: str(value) for key, value in context.invocation_metadata()}
        spans = self._arrived(headers, headers.get("grpc-encoding", "identity"), request, self.mode)
        mode = self.settle()
        if mode is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "receiver stopped")
        if mode in _GRPC_ERRORS:
            context.abort(_GRPC_ERRORS[mode], f"receiver told to fail with {mode}")
        answer = self._respond(request)
        if isinstance(answer, grpc.StatusCode):
            context.abort(answer, f"scripted {answer.name}")
        self._accepted(request, spans)
        return answer

    def _serve(self, port: int) -> int:
        handler = grpc.unary_unary_rpc_method_handler(
            self._export,
            request_deserializer=ExportTraceServiceRequest.FromString,
            response_serializer=ExportTraceServiceResponse.SerializeToString,
        )
        executor = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="otlp-grpc")
        server = grpc.server(executor, options=self._options)
        server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(GRPC_SERVICE, {"Export": handler})])
        address = f"{self.host}:{port}"
        if self._credentials is None:
            bound = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, self._credentials)
        if not bound:
            raise OSError(f"gRPC could not bind {self.host}:{port}")
        server.start()
        self._server = server
        return bound

    def _unserve(self) -> None:
        if self._server is not None:
            self._server.stop(grace=1).wait(5)
            self._server = None


class OtlpHttpReceiver(OtlpReceiver, HttpBackend):
    """An OTLP/HTTP (binary protobuf) trace receiver on a free loopback port. Use as a context manager."""

    def __init__(
        self,
        mode: Mode = "ok",
        host: str = "127.0.0.1",
        path: str = TRACES_PATH,
        *,
        port: int = 0,
        keep: bool = True,
        on_spans: Callable[[int], None] | None = None,
    ) -> None:
        HttpBackend.__init__(self, mode=mode, host=host, port=port, keep=False)  # its records are the exports
        OtlpReceiver.__init__(self, keep, on_spans)
        self.path = path

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT: the base URL, to which exporters append /v1/traces."""
        return self.url

    @property
    def traces_endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the full URL, used as is."""
        return f"{self.endpoint}{self.path}"

    def reply(self, request: HttpRequest) -> Reply | None:
        if request.path.split("?", 1)[0] != self.path or request.method != "POST":
            return Reply(404 if request.method == "POST" else 405, b"", content_type=PROTOBUF)
        arrival = self.mode
        encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
        content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
        if content_type != PROTOBUF:
            self._arrived(request.headers, encoding, None, arrival)
            return Reply(415, b"", content_type=PROTOBUF)
        try:
            export = ExportTraceServiceRequest.FromString(_decompress(request.body, encoding))
        except (OSError, zlib.error, ValueError, DecodeError):
            self._arrived(request.headers, encoding, None, arrival)
            return Reply(400, b"", content_type=PROTOBUF)
        spans = self._arrived(request.headers, encoding, export, arrival)
        mode = self.settle()
        if mode is None:
            return None
        if mode != "ok":
            return self.failure(int(mode))
        self._accepted(export, spans)
        return Reply(200, ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    def failure(self, status: int) -> Reply:
        return Reply(status, b"", content_type=PROTOBUF)


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding != "identity":
        raise ValueError(f"unsupported Content-Encoding {encoding}")
    return body


def otlp_receiver(protocol: Literal["grpc", "http/protobuf"], mode: Mode) -> OtlpGrpcReceiver | OtlpHttpReceiver:
    """An OTLP trace receiver speaking `protocol`, behaving as `mode` (not started)."""
    return OtlpGrpcReceiver(mode) if protocol == "grpc" else OtlpHttpReceiver(mode)
