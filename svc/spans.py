"""A leaner start_span for the SDK's own Tracer: the same spans, a fraction of the allocations.

The SDK builds every recorded span with a BoundedAttributes that re-validates each attribute, two BoundedLists
(a deque and a lock each) for events and links that almost no span uses, and a ReadableSpan copy at end();
on one core that was about 40 µs a span (bench/). LeanTracer makes the same SDK Span (same class hierarchy,
same processors, same exporters) with clean attributes copied as they are, events and links created on first
use, and the ended span itself handed to the processors. Anything unusual (links, odd attribute values, a
disabled tracer) goes through the SDK's own start_span.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from time import time_ns
from typing import Any, cast

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import EventBase, Span, Tracer, TracerProvider
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util import types

__all__ = ["LeanSpan", "LeanTracer", "LeanTracerProvider"]

log = logging.getLogger("svc.spans")

_UNSET = Status(StatusCode.UNSET)  # immutable, so every span may share it (the SDK's own default does)
_NONE: tuple[Any, ...] = ()  # no events or links yet: a BoundedList is made on the first add
_PLAIN = frozenset({str, bool, int, float})
_SAMPLED = TraceFlags.SAMPLED
_RANDOM = TraceFlags.RANDOM_TRACE_ID


class LeanSpan(Span):
    """The SDK's Span, built without its constructor; every method behaves as the SDK's does."""

    def _add_event(self, event: EventBase) -> None:
        with self._lock:
            if self._events is _NONE:
                self._events = BoundedList(self._limits.max_events)
        super()._add_event(event)

    def _add_link(self, link: Link) -> None:
        with self._lock:
            if self._links is _NONE:
                self._links = BoundedList(self._limits.max_links)
        super()._add_link(link)

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        bounded = cast(BoundedAttributes, self._attributes)
        if not _copyable(attributes, len(bounded), bounded.maxlen, bounded.max_value_len):
            super().set_attributes(attributes)
            return
        with self._lock:
            if self._end_time is not None:
                log.warning("Setting attribute on ended span.")
                return
            stored = bounded._dict
            for key, value in attributes.items():
                stored.pop(key, None)  # a key set again moves to the end, as in the SDK
                stored[key] = value

    def end(self, end_time: int | None = None) -> None:
        with self._lock:
            if self._start_time is None:
                raise RuntimeError("Calling end() on a not started span.")
            if self._end_time is not None:
                log.warning("Calling end() on an ended span.")
                return
            self._end_time = end_time if end_time is not None else time_ns()
            cast(BoundedAttributes, self._attributes)._immutable = True
        self._span_processor._on_ending(self)
        # The SDK hands processors a ReadableSpan copy; an ended span cannot change, so it is its own copy.
        self._span_processor.on_end(self)


def _copyable(attributes: Mapping[str, Any], stored: int, maxlen: int | None, max_value_len: int | None) -> bool:
    """True if adding attributes to stored ones could neither drop nor change any: the SDK would keep them as is."""
    if max_value_len is not None or (maxlen is not None and stored + len(attributes) > maxlen):
        return False
    return all(type(value) in _PLAIN and type(key) is str and key != "" for key, value in attributes.items())


class LeanTracer(Tracer):
    """The SDK's Tracer with a start_span that builds LeanSpans; same sampling, ids, processors and limits."""

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
        if links or not self._is_enabled():
            return super().start_span(
                name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
            )
        parent: SpanContext | None = trace_api.get_current_span(context).get_span_context()
        if parent is not None and not isinstance(parent, SpanContext):
            raise TypeError("parent_span_context must be a SpanContext or None.")
        ids = self.id_generator
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = ids.generate_trace_id()
            random_trace_id = ids.is_trace_id_random()
        else:
            trace_id = parent.trace_id
            random_trace_id = parent.trace_flags.random_trace_id
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes, ())
        flags = (_SAMPLED if result.decision is Decision.RECORD_AND_SAMPLE else 0) | (_RANDOM if random_trace_id else 0)
        span_context = SpanContext(
            trace_id,
            ids.generate_span_id(),
            is_remote=False,
            trace_flags=TraceFlags(flags),
            trace_state=result.trace_state,
        )
        if result.decision is Decision.DROP:
            return trace_api.NonRecordingSpan(span_context)

        limits = self._span_limits
        bounded = BoundedAttributes(
            limits.max_span_attributes, None, immutable=False, max_value_len=limits.max_span_attribute_length
        )
        if result.attributes:
            if _copyable(result.attributes, 0, limits.max_span_attributes, limits.max_span_attribute_length):
                bounded._dict.update(result.attributes)
            else:
                bounded._set_items(result.attributes)

        span = object.__new__(LeanSpan)  # Span.__new__ only refuses the base class
        # ReadableSpan's fields, then Span's: what their constructors would set, with the defaults they use.
        span._name = name
        span._context = span_context
        span._kind = kind
        span._instrumentation_info = self.instrumentation_info
        span._instrumentation_scope = self._instrumentation_scope
        span._parent = parent
        span._start_time = start_time if start_time is not None else time_ns()
        span._end_time = None
        span._attributes = bounded
        span._events = _NONE
        span._links = _NONE
        span._resource = self.resource
        span._status = _UNSET
        span._sampler = self.sampler
        span._trace_config = None
        span._record_exception = record_exception
        span._set_status_on_exception = set_status_on_exception
        span._span_processor = self.span_processor
        span._limits = limits
        span._lock = threading.Lock()
        span._record_end_metrics = None  # the SDK's own span metrics are off unless an env var turns them on
        self.span_processor.on_start(span, parent_context=context)
        return span


class LeanTracerProvider(TracerProvider):
    """The SDK's TracerProvider whose tracers are LeanTracers."""

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: types.Attributes = None,
    ) -> trace_api.Tracer:
        tracer = super().get_tracer(instrumenting_module_name, instrumenting_library_version, schema_url, attributes)
        if type(tracer) is Tracer:
            # The provider builds, caches and later reconfigures its Tracer by name; the class is swapped in
            # place so that bookkeeping stays the SDK's.
            tracer.__class__ = LeanTracer
        return tracer
