"""svc.otlp's direct encoder (svc/otlp.py) writes exactly what the SDK's encode_spans builds, for every kind of span."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from svc.otlp import encode_spans_bytes
from tests.telemetry.sdk import assert_encodes_as_the_sdk, sdk_provider

RESOURCE = Resource.create({"service.name": "svc", "service.version": "1.2.3", "deployment.environment.name": "t"})


def _provider(resource: Resource = RESOURCE) -> tuple[TracerProvider, InMemorySpanExporter]:
    return sdk_provider(resource, limits=SpanLimits(max_attributes=8, max_events=2, max_links=2))


def _same(spans: tuple[ReadableSpan, ...] | list[ReadableSpan]) -> None:
    assert_encodes_as_the_sdk(spans, spans)


def test_svc_request_spans_encode_identically() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("svc", "0.1.0")
    server = tracer.start_span(
        "GET",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "url.path": "/links/x", "client.address": "127.0.0.1"},
    )
    child = tracer.start_span(
        "SELECT links",
        context=set_span_in_context(server),
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": "sqlite", "db.query.text": "SELECT 1"},
    )
    child.end()
    server.set_attributes({"http.route": "/links/{slug}", "http.response.status_code": 200})
    server.update_name("GET /links/{slug}")
    server.end()
    _same(memory.get_finished_spans())


def test_errors_events_links_remote_parents_trace_state_and_limits() -> None:
    provider, memory = _provider()
    other = provider.get_tracer("other", None, schema_url="https://opentelemetry.io/schemas/1.21.0")
    tracer = provider.get_tracer("svc")
    remote = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "v1"), ("x", "y")]),
    )
    linked = SpanContext(trace_id=1, span_id=2, is_remote=False)
    span = tracer.start_span(
        "boom",
        context=set_span_in_context(NonRecordingSpan(remote)),
        links=[Link(linked, {"why": "retry"}), Link(remote)],
        attributes={f"k{i}": i for i in range(12)},  # beyond the limit: dropped_attributes_count is set
    )
    try:
        raise ValueError("bad value\nwith a newline")
    except ValueError as exc:
        span.record_exception(exc)
    span.add_event("e2", {"n": -5, "f": 1.5, "b": False, "s": "", "z": 0})
    span.add_event("e3")  # beyond max_events
    span.set_status(Status(StatusCode.ERROR, "it broke"))
    span.end()
    ok = other.start_span("ok", kind=SpanKind.PRODUCER)
    ok.set_status(Status(StatusCode.OK))
    ok.end()
    plain = tracer.start_span("internal", kind=SpanKind.CONSUMER)
    plain.end()
    _same(memory.get_finished_spans())


def test_several_resources_keep_first_seen_order() -> None:
    first, memory_a = _provider()
    second, memory_b = _provider(Resource.create({"service.name": "other"}, schema_url="https://example.com/s"))
    for provider in (first, second, first):
        provider.get_tracer("t").start_span("s").end()
    spans = [*memory_a.get_finished_spans(), *memory_b.get_finished_spans()]
    _same([spans[0], spans[2], spans[1]])


def test_empty_batch() -> None:
    _same([])


scalar = st.one_of(
    st.text(max_size=20),
    st.booleans(),
    st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    st.floats(allow_nan=False),
)
attribute_value = st.one_of(
    scalar,
    st.lists(st.text(max_size=5), max_size=3).map(tuple),
    st.lists(st.integers(min_value=-1000, max_value=1000), max_size=3).map(tuple),
    st.lists(st.floats(allow_nan=False), max_size=3).map(tuple),
    st.lists(st.booleans(), max_size=3).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(max_size=30),
    attributes=st.dictionaries(st.text(min_size=1, max_size=12), attribute_value, max_size=10),
    kind=st.sampled_from(list(SpanKind)),
)
def test_any_attributes_encode_identically(name: str, attributes: dict[str, Any], kind: SpanKind) -> None:
    provider, memory = _provider()
    provider.get_tracer("svc").start_span(name, kind=kind, attributes=attributes).end()
    _same(memory.get_finished_spans())


@pytest.mark.parametrize("value", [1 << 63, -(1 << 63) - 1])
def test_an_attribute_that_does_not_fit_is_left_out_like_the_sdk_does(value: int) -> None:
    provider, memory = _provider()
    provider.get_tracer("svc").start_span("s", attributes={"ok": 1, "big": value}).end()
    spans = memory.get_finished_spans()
    ours = ExportTraceServiceRequest.FromString(encode_spans_bytes(spans))
    [span] = ours.resource_spans[0].scope_spans[0].spans
    assert [kv.key for kv in span.attributes] == ["ok"]
