"""The SDK's own tracer and OTLP encoder: the reference svc's span recorder and encoder are held to."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from svc.otlp import SpanData, encode_spans_bytes

__all__ = ["assert_encodes_as_the_sdk", "sdk_provider"]


def sdk_provider(
    resource: Resource,
    *,
    sampler: sampling.Sampler = sampling.ALWAYS_ON,
    limits: SpanLimits | None = None,
    ids: IdGenerator | None = None,
) -> tuple[TracerProvider, InMemorySpanExporter]:
    """An SDK TracerProvider whose ended spans land, as ReadableSpans, in the returned in-memory exporter."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=resource, sampler=sampler, span_limits=limits, id_generator=ids)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def assert_encodes_as_the_sdk(ours: Sequence[SpanData], theirs: Sequence[ReadableSpan]) -> None:
    """svc.otlp's request for `ours` is the SDK's encode_spans request for `theirs`: as a message and byte for byte."""
    ours_bytes = encode_spans_bytes(ours)
    reference = encode_spans(theirs)
    assert ExportTraceServiceRequest.FromString(ours_bytes) == reference  # the readable diff, when they differ
    # Same bytes too (both write fields in field-number order), so receivers see no difference at all.
    assert ours_bytes == reference.SerializeToString(deterministic=True)
