"""svc's span recorder: its own implementation of the OpenTelemetry API's Tracer and Span.

The SDK's Tracer builds each span with a BoundedAttributes that re-validates every value, two BoundedLists with a
deque and a lock each, and a ReadableSpan copy at end(): about 40 µs a span on one core (bench/). This recorder
implements the same public interfaces (opentelemetry.trace.Tracer, Span, TracerProvider), samples with any SDK
Sampler through its public should_sample, and keeps the span's data as plain slots named like ReadableSpan's
public properties, so svc.otlp encodes either. Limits follow the spec's defaults (128 attributes, events, links,
the oldest one dropped first); plain values (str, bool, int, float) are stored as they are, anything else goes
through the API's own BoundedAttributes, so it is kept or dropped exactly as the SDK would. A span belongs to the
task that started it: no lock.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from time import time_ns
from typing import Any, Protocol

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.sampling import Decision, Sampler
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

__all__ = ["MAX_ATTRIBUTES", "RecordedSpan", "Recorder", "RecordingTracer", "SpanSink"]

log = logging.getLogger("svc.spans")

# The spec's default limits (OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT and friends).
MAX_ATTRIBUTES = 128
MAX_EVENTS = 128
MAX_LINKS = 128
_UNSET = Status(StatusCode.UNSET)
_PLAIN = frozenset({str, bool, int, float})
# W3C Trace Context Level 2: the "random" flag marks a trace id that is random (svc's are; a parent's says so
# itself). Indexed by (random, sampled).
_FLAGS = {
    (random_id, sampled): TraceFlags(
        (TraceFlags.RANDOM_TRACE_ID if random_id else 0) | (TraceFlags.SAMPLED if sampled else 0)
    )
    for random_id in (False, True)
    for sampled in (False, True)
}
_RECORD_AND_SAMPLE = Decision.RECORD_AND_SAMPLE
_DROP = Decision.DROP
_ids = random.Random()  # seeded from os.urandom once; span ids need uniqueness, not secrecy (as the SDK's)


class SpanSink(Protocol):
    """Where ended spans go: svc.tracing's batch exporter, or a test's recorder."""

    def on_end(self, span: RecordedSpan) -> None:
        """Take one ended span; must not block."""


def _cleaned(key: Any, value: Any) -> tuple[dict[str, Any], int]:
    """One attribute as the API's own BoundedAttributes keeps it (the rare, non-plain case), and its drop count."""
    checked = BoundedAttributes(None, None, immutable=False)
    checked[key] = value
    return dict(checked), checked.dropped


class RecordedSpan(trace_api.Span):
    """A recording span; its public fields are ReadableSpan's properties, by the same names."""

    __slots__ = (
        "_ended_by",
        "_record_exception",
        "_set_status_on_exception",
        "attributes",
        "context",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
        "end_time",
        "events",
        "instrumentation_scope",
        "kind",
        "links",
        "name",
        "parent",
        "resource",
        "start_time",
        "status",
    )

    def __init__(
        self,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        resource: Resource,
        scope: InstrumentationScope,
        sink: SpanSink,
        start_time: int,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        self.name = name
        self.context = context
        self.parent = parent
        self.kind = kind
        self.resource = resource
        self.instrumentation_scope = scope
        self.start_time = start_time
        self.end_time: int | None = None
        self.attributes: dict[str, Any] = {}
        self.events: list[Event] = []
        self.links: list[Link] = []
        self.status = _UNSET
        self.dropped_attributes = 0
        self.dropped_events = 0
        self.dropped_links = 0
        self._ended_by: SpanSink | None = sink
        self._record_exception = record_exception
        self._set_status_on_exception = set_status_on_exception

    def get_span_context(self) -> SpanContext:
        return self.context

    def is_recording(self) -> bool:
        return self.end_time is None

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if self.end_time is not None:
            log.warning("Setting attribute on ended span.")
            return
        stored = self.attributes
        if len(stored) + len(attributes) <= MAX_ATTRIBUTES:
            # The common case, and the hot one: plain values, room for all. Anything else takes the long way.
            plain = _PLAIN
            for key, value in attributes.items():
                if type(value) not in plain or type(key) is not str or not key:
                    break
                if key in stored:
                    del stored[key]  # a key set again moves to the end, as in the SDK
                stored[key] = value
            else:
                return
        for given_key, given in attributes.items():
            key, value = given_key, given
            if type(value) not in _PLAIN or type(key) is not str or not key:
                clean, dropped = _cleaned(key, value)
                self.dropped_attributes += dropped
                if not clean:
                    continue
                key, value = next(iter(clean.items()))
            if key in stored:
                del stored[key]
            elif len(stored) >= MAX_ATTRIBUTES:
                del stored[next(iter(stored))]  # the oldest one makes room, as in the SDK
                self.dropped_attributes += 1
            stored[key] = value

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        self.set_attributes({key: value})

    def add_event(self, name: str, attributes: types.Attributes = None, timestamp: int | None = None) -> None:
        if self.end_time is not None:
            log.warning("Calling add_event() on an ended span.")
            return
        if len(self.events) >= MAX_EVENTS:
            del self.events[0]  # the oldest one makes room, as in the SDK
            self.dropped_events += 1
        # Events are rare (exceptions): their attributes get the API's own validating container.
        checked = BoundedAttributes(MAX_ATTRIBUTES, attributes, immutable=True)
        self.events.append(Event(name, checked, timestamp if timestamp is not None else time_ns()))

    def add_link(self, context: SpanContext, attributes: types.Attributes = None) -> None:
        if self.end_time is not None:
            log.warning("Calling add_link() on an ended span.")
            return
        if not context.is_valid:
            return
        if len(self.links) >= MAX_LINKS:
            del self.links[0]
            self.dropped_links += 1
        self.links.append(Link(context, BoundedAttributes(MAX_ATTRIBUTES, attributes, immutable=True)))

    def update_name(self, name: str) -> None:
        if self.end_time is None:
            self.name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self.end_time is not None or self.status.status_code is StatusCode.OK:
            return  # OK is final, as the spec says
        self.status = Status(status, description) if isinstance(status, StatusCode) else status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        stacktrace = "".join(traceback.format_exception(exception))
        module, qualname = type(exception).__module__, type(exception).__qualname__
        event: dict[str, Any] = {
            "exception.type": f"{module}.{qualname}" if module and module != "builtins" else qualname,
            "exception.message": str(exception),
            "exception.stacktrace": stacktrace,
            "exception.escaped": str(escaped),
        }
        event.update(attributes or {})
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        sink = self._ended_by
        if sink is None:
            log.warning("Calling end() on an ended span.")
            return
        self._ended_by = None
        self.end_time = end_time if end_time is not None else time_ns()
        sink.on_end(self)

    def __exit__(self, exc_type: Any, exc_val: BaseException | None, exc_tb: Any) -> None:
        if exc_val is not None and self.is_recording():
            if self._record_exception:
                self.record_exception(exc_val, escaped=True)
            if self._set_status_on_exception:
                self.set_status(Status(StatusCode.ERROR, f"{type(exc_val).__name__}: {exc_val}"))
        self.end()

    def to_readable(self) -> ReadableSpan:
        """The SDK's ReadableSpan of this span, built through its public constructor (for SDK processors)."""
        return ReadableSpan(
            name=self.name,
            context=self.context,
            parent=self.parent,
            resource=self.resource,
            attributes=dict(self.attributes),
            events=tuple(self.events),
            links=tuple(self.links),
            kind=self.kind,
            status=self.status,
            start_time=self.start_time,
            end_time=self.end_time,
            instrumentation_scope=self.instrumentation_scope,
        )


class RecordingTracer(trace_api.Tracer):
    """Starts RecordedSpans: the sampler's decision, W3C ids, and NonRecordingSpans for what is dropped."""

    def __init__(self, recorder: Recorder, scope: InstrumentationScope) -> None:
        self._recorder = recorder
        self._scope = scope

    def start_span(
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace_api.Span:
        recorder = self._recorder
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = recorder.new_trace_id()
            random_id = recorder.random_ids
        else:
            trace_id = parent.trace_id
            random_id = parent.trace_flags.random_trace_id
        links = links or ()
        result = recorder.sampler.should_sample(context, trace_id, name, kind, attributes, links)
        decision = result.decision
        span_context = SpanContext(
            trace_id,
            recorder.new_span_id(),
            is_remote=False,
            trace_flags=_FLAGS[random_id, decision is _RECORD_AND_SAMPLE],
            trace_state=result.trace_state,
        )
        if decision is _DROP:
            return trace_api.NonRecordingSpan(span_context)
        span = RecordedSpan(
            name,
            span_context,
            parent,
            kind,
            recorder.resource,
            self._scope,
            recorder if decision is _RECORD_AND_SAMPLE else _DISCARD,
            start_time if start_time is not None else time_ns(),
            record_exception,
            set_status_on_exception,
        )
        if result.attributes:  # the span's attributes are the sampler's (the SDK's samplers pass them through)
            span.set_attributes(result.attributes)
        for link in links:
            span.add_link(link.context, link.attributes)
        return span

    # The API types its return as a private wrapper of contextlib's; a contextlib context manager is what it is.
    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: context_api.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: types.Attributes = None,
        links: Sequence[Link] | None = (),
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[trace_api.Span]:
        span = self.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )
        with trace_api.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class _Discard:
    """The sink of spans recorded but not sampled (RECORD_ONLY): they end and go nowhere."""

    def on_end(self, span: RecordedSpan) -> None:
        del span


_DISCARD = _Discard()


class Recorder(trace_api.TracerProvider):
    """A TracerProvider of RecordingTracers, sending every ended, sampled span to its sinks."""

    def __init__(
        self, resource: Resource, sampler: Sampler, sinks: Sequence[SpanSink], id_source: random.Random | None = None
    ) -> None:
        self.resource = resource
        self.sampler = sampler
        self._sinks = tuple(sinks)
        # A test's seeded source is not random in the W3C sense: its ids are predictable.
        self.random_ids = id_source is None
        self._bits = (id_source or _ids).getrandbits

    def new_trace_id(self) -> int:
        """A random, non-zero 128-bit trace id."""
        return self._bits(128) or 1

    def new_span_id(self) -> int:
        """A random, non-zero 64-bit span id."""
        return self._bits(64) or 1

    def on_end(self, span: RecordedSpan) -> None:
        """Hand one ended span to every sink."""
        for sink in self._sinks:
            sink.on_end(span)

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        scope = InstrumentationScope(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        return RecordingTracer(self, scope)
