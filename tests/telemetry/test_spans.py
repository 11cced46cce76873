"""svc.spans' Recorder records the spans the SDK's Tracer records: field for field, and byte for byte on the wire."""

from __future__ import annotations

import logging
import random
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider, sampling
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

from svc.spans import RecordedSpan, Recorder
from tests.telemetry.sdk import assert_encodes_as_the_sdk, sdk_provider

RESOURCE = Resource.create({"service.name": "svc"})
SEED = 20261201


class _Seeded(IdGenerator):
    """The SDK's ids drawn as the Recorder draws them, so both tracers' spans can be compared whole."""

    def __init__(self) -> None:
        self._random = random.Random(SEED)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


class _Kept:
    """A sink that keeps every ended span."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def on_end(self, span: RecordedSpan) -> None:
        self.spans.append(span)


def _pair(sampler: sampling.Sampler = sampling.ALWAYS_ON) -> tuple[Any, InMemorySpanExporter, Any, _Kept]:
    provider, memory = sdk_provider(RESOURCE, sampler=sampler, ids=_Seeded())
    kept = _Kept()
    recorder = Recorder(RESOURCE, sampler, [kept], id_source=random.Random(SEED))
    return provider.get_tracer("svc", "1.0"), memory, recorder.get_tracer("svc", "1.0"), kept


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
@example(start={"a": 1, "b": 2}, later={"a": 3}, events=0, status=False)
@given(start=_attributes, later=_attributes, events=st.integers(min_value=0, max_value=3), status=st.booleans())
def test_recorded_spans_are_the_sdks_spans_field_for_field_and_on_the_wire(
    start: dict[str, Any], later: dict[str, Any], events: int, status: bool
) -> None:
    sdk, memory, ours, kept = _pair()
    logging.disable(logging.WARNING)  # both warn about each invalid attribute
    try:
        _record(sdk, start, later, events, status)
        _record(ours, start, later, events, status)
    finally:
        logging.disable(logging.NOTSET)
    theirs: tuple[ReadableSpan, ...] = memory.get_finished_spans()
    assert [s.to_readable().attributes for s in kept.spans] == [s.attributes for s in theirs]
    assert [s.dropped_attributes for s in kept.spans] == [s.dropped_attributes for s in theirs]
    assert_encodes_as_the_sdk(kept.spans, theirs)


def test_the_attribute_limit_drops_the_oldest_as_the_sdk_does() -> None:
    sdk, memory, ours, kept = _pair()
    many = {f"k{n}": n for n in range(130)}
    for tracer in (sdk, ours):
        span = tracer.start_span("GET", start_time=1)
        span.set_attributes(many)
        span.end(2)
    (theirs,) = memory.get_finished_spans()
    assert kept.spans[0].to_readable().attributes == theirs.attributes
    assert kept.spans[0].dropped_attributes == theirs.dropped_attributes == 2


def test_an_exception_event_is_the_sdks() -> None:
    sdk, memory, ours, kept = _pair()
    error = ValueError("boom")
    for tracer in (sdk, ours):
        span = tracer.start_span("GET", start_time=1)
        span.record_exception(error, timestamp=5)
        span.end(9)
    assert_encodes_as_the_sdk(kept.spans, memory.get_finished_spans())


def test_unsampled_spans_are_not_recorded_and_carry_the_decision() -> None:
    _, _, ours, kept = _pair(sampling.ALWAYS_OFF)
    span = ours.start_span("GET", attributes={"a": 1})
    span.end()
    assert not span.is_recording()
    assert span.get_span_context().is_valid
    assert not span.get_span_context().trace_flags.sampled
    assert kept.spans == []


def test_a_child_of_a_remote_parent_keeps_its_trace_and_sampling() -> None:
    _, _, ours, kept = _pair(sampling.ParentBased(sampling.ALWAYS_OFF))
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    ours.start_span("GET", context=set_span_in_context(NonRecordingSpan(remote))).end()
    (span,) = kept.spans
    assert span.context.trace_id == 0xABC
    assert span.context.trace_flags.sampled
    assert span.parent == remote


def test_links_and_setting_after_end_behave_as_the_sdk(caplog: pytest.LogCaptureFixture) -> None:
    _, _, ours, kept = _pair()
    other = SpanContext(1, 2, is_remote=False)
    linked = ours.start_span("linked", links=[Link(other, {"k": "v"})])
    linked.add_link(SpanContext(3, 4, is_remote=False))
    linked.end()
    linked.set_attributes({"late": 1})
    assert "ended span" in caplog.text
    (span,) = kept.spans
    assert [link.context.span_id for link in span.links] == [2, 4]
    assert "late" not in span.attributes


def test_start_as_current_span_makes_the_span_current_and_records_an_escaping_error() -> None:
    _, _, ours, kept = _pair()

    def work() -> None:
        with ours.start_as_current_span("work") as span:
            assert span.is_recording()
            raise KeyError("x")

    with pytest.raises(KeyError):
        work()
    (ended,) = kept.spans
    assert ended.status.status_code is StatusCode.ERROR
    assert [event.name for event in ended.events] == ["exception"]


def test_a_root_span_carries_the_w3c_random_trace_id_flag_as_the_sdks_does() -> None:
    recorder = Recorder(RESOURCE, sampling.ALWAYS_ON, [])
    ours = recorder.get_tracer("svc").start_span("GET").get_span_context().trace_flags
    theirs = TracerProvider().get_tracer("svc").start_span("GET").get_span_context().trace_flags
    assert ours == theirs
    assert ours.random_trace_id
    assert ours.sampled


def test_the_event_limit_drops_the_oldest_as_the_sdk_does() -> None:
    sdk, memory, ours, kept = _pair()
    for tracer in (sdk, ours):
        span = tracer.start_span("GET", start_time=1)
        for n in range(130):
            span.add_event(f"e{n}", timestamp=2 + n)
        span.end(200)
    (theirs,) = memory.get_finished_spans()
    assert [e.name for e in kept.spans[0].events] == [e.name for e in theirs.events]
    assert kept.spans[0].dropped_events == theirs.dropped_events == 2


def test_an_ok_status_is_final_as_the_spec_says() -> None:
    _, _, ours, kept = _pair()
    span = ours.start_span("GET")
    span.set_status(Status(StatusCode.OK))
    span.set_status(Status(StatusCode.ERROR, "later"))
    span.end()
    assert kept.spans[0].status.status_code is StatusCode.OK


def test_a_span_ended_twice_warns_and_reaches_the_sink_once(caplog: pytest.LogCaptureFixture) -> None:
    _, _, ours, kept = _pair()
    span = ours.start_span("GET")
    span.end(5)
    span.end(9)
    assert "Calling end() on an ended span." in caplog.text
    assert [s.end_time for s in kept.spans] == [5]


def test_a_name_changed_after_end_stays_the_ended_name() -> None:
    _, _, ours, kept = _pair()
    span = ours.start_span("GET")
    span.end()
    span.update_name("GET /late")
    assert kept.spans[0].name == "GET"


class _RecordOnly(sampling.Sampler):
    """A sampler deciding RECORD_ONLY for every span (the SDK ships none)."""

    def should_sample(self, *args: Any, **kwargs: Any) -> sampling.SamplingResult:
        return sampling.SamplingResult(sampling.Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


def test_a_record_only_span_records_but_never_reaches_the_sinks() -> None:
    _, _, ours, kept = _pair(_RecordOnly())
    span = ours.start_span("GET")
    assert span.is_recording()
    assert not span.get_span_context().trace_flags.sampled
    span.end()
    assert kept.spans == []
