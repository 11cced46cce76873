"""Send test spans with the real OpenTelemetry SDK and OTLP exporters, through a private TracerProvider."""

from __future__ import annotations

from typing import Literal

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind

Protocol = Literal["grpc", "http/protobuf"]


def exporter(protocol: Protocol, grpc_endpoint: str, http_endpoint: str) -> SpanExporter:
    """An OTLP exporter for ``protocol``; endpoints as JaegerPeer gives them."""
    if protocol == "grpc":
        return GrpcExporter(endpoint=grpc_endpoint, insecure=True, timeout=5)
    return HttpExporter(endpoint=f"{http_endpoint}/v1/traces", timeout=5)


def send_server_span(
    span_exporter: SpanExporter, service: str, operation: str, child: str, attributes: dict[str, str]
) -> str:
    """Export one SERVER span with one child span synchronously; returns the trace id (32 hex).

    A private provider: the global one belongs to whatever else runs in this process.
    """
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = provider.get_tracer("tests.peers")
    try:
        with tracer.start_as_current_span(operation, kind=SpanKind.SERVER, attributes=attributes) as span:
            with tracer.start_as_current_span(child):
                pass
            return format(span.get_span_context().trace_id, "032x")
    finally:
        provider.shutdown()
