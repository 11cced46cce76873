"""svc.spans' LeanTracer records exactly the spans the SDK's Tracer records, byte for byte on the wire."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider, sampling
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
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

from svc.otlp import encode_spans_bytes
from svc.spans import LeanSpan, LeanTracer, LeanTracerProvider

RESOURCE = Resource.create({"service.name": "svc"})


class _Counting(IdGenerator):
    """The same ids for both tracers, so their spans can be compared whole."""

    def __init__(self) -> None:
        self._next = 0

    def generate_span_id(self) -> int:
        self._next += 1
        return self._next

    def generate_trace_id(self) -> int:
        self._next += 1
        return self._next << 64


def _pair(limits: SpanLimits, sampler: sampling.Sampler = sampling.ALWAYS_ON) -> list[Any]:
    out = []
    for cls in (TracerProvider, LeanTracerProvider):
        memory = InMemorySpanExporter()
        provider = cls(resource=RESOURCE, sampler=sampler, id_generator=_Counting(), span_limits=limits)
        provider.add_span_processor(SimpleSpanProcessor(memory))
        out.append((provider.get_tracer("svc", "1.0"), memory))
    return out


_values = st.one_of(
    st.text(max_size=12),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
)
# Few distinct keys, so later attributes often overwrite earlier ones (and the order must stay the SDK's).
_attributes = st.dictionaries(st.text(alphabet="abcd", max_size=2), _values, max_size=10)


def _record(tracer: Any, start: dict[str, Any], later: dict[str, Any], events: int, status: bool) -> None:
    server = tracer.start_span("GET", kind=SpanKind.SERVER, attributes=start, start_time=1_000)
    child = tracer.start_span(
        "SELECT links", context=set_span_in_context(server), kind=SpanKind.CLIENT, attributes=later, start_time=2_000
    )
    for n in range(events):
        child.add_event(f"e{n}", {"n": n}, timestamp=2_500 + n)
    child.end(3_000)
    server.set_attributes(later)
    server.update_name("GET /links/{slug}")
    if status:
        server.set_status(Status(StatusCode.ERROR, "boom"))
    server.end(4_000)


@settings(max_examples=200, deadline=None)
@example(start={"a": 1, "b": 2}, later={"a": 3}, events=0, status=False, max_attributes=None, max_length=None)
@given(
    start=_attributes,
    later=_attributes,
    events=st.integers(min_value=0, max_value=3),
    status=st.booleans(),
    max_attributes=st.sampled_from([None, 3, 8]),
    max_length=st.sampled_from([None, 2]),
)
def test_lean_spans_encode_as_the_sdks_do(
    start: dict[str, Any],
    later: dict[str, Any],
    events: int,
    status: bool,
    max_attributes: int | None,
    max_length: int | None,
) -> None:
    limits = SpanLimits(max_span_attributes=max_attributes, max_events=2, max_span_attribute_length=max_length)
    (sdk, sdk_memory), (lean, lean_memory) = _pair(limits)
    logging.disable(logging.WARNING)  # the SDK warns about each invalid or dropped attribute
    try:
        _record(sdk, start, later, events, status)
        _record(lean, start, later, events, status)
    finally:
        logging.disable(logging.NOTSET)
    ours: tuple[ReadableSpan, ...] = lean_memory.get_finished_spans()
    assert all(type(span) is LeanSpan for span in ours)
    assert encode_spans(ours) == encode_spans(sdk_memory.get_finished_spans())
    assert [s.dropped_attributes for s in ours] == [s.dropped_attributes for s in sdk_memory.get_finished_spans()]
    assert encode_spans_bytes(ours) == encode_spans(ours).SerializeToString(deterministic=True)


def test_unsampled_spans_are_not_recorded_and_carry_the_decision() -> None:
    (_, _), (lean, memory) = _pair(SpanLimits(), sampling.ALWAYS_OFF)
    span = lean.start_span("GET", attributes={"a": 1})
    span.end()
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    assert memory.get_finished_spans() == ()


def test_a_child_of_a_remote_parent_keeps_its_trace_and_sampling() -> None:
    (_, _), (lean, memory) = _pair(SpanLimits(), sampling.ParentBased(sampling.ALWAYS_OFF))
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    lean.start_span("GET", context=set_span_in_context(NonRecordingSpan(remote))).end()
    (span,) = memory.get_finished_spans()
    assert span.context.trace_id == 0xABC
    assert span.context.trace_flags.sampled
    assert span.parent == remote


def test_links_and_setting_after_end_behave_as_the_sdk(caplog: pytest.LogCaptureFixture) -> None:
    (_, _), (lean, memory) = _pair(SpanLimits())
    assert isinstance(lean, LeanTracer)
    other = SpanContext(1, 2, is_remote=False)
    linked = lean.start_span("linked", links=[Link(other, {"k": "v"})])
    linked.add_link(SpanContext(3, 4, is_remote=False))
    linked.end()
    linked.set_attributes({"late": 1})
    assert "ended span" in caplog.text
    (span,) = memory.get_finished_spans()
    assert [link.context.span_id for link in span.links] == [2, 4]
    assert "late" not in span.attributes
