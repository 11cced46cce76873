"""OTLP span encoding straight to protobuf bytes, from ReadableSpan's public properties.

The SDK's encoder builds one protobuf object per span, attribute and value and then serialises them: about
50 µs of Python per span on the export thread, holding the GIL the request path needs. This encoder writes
the same wire bytes directly (about 5x faster): every message a field at a time, in field-number order, with
the encodings of repeated keys and of the resource and scope cached. It reads only the properties the SDK's
ReadableSpan makes public (svc.spans.RecordedSpan has the same ones), and tests/telemetry/test_otlp.py
holds it byte for byte against the SDK's own encode_spans.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.status import Status

__all__ = ["SpanData", "encode_spans_bytes"]


class SpanData(Protocol):
    """The ReadableSpan properties the encoder reads (svc.spans.RecordedSpan and the SDK's ReadableSpan)."""

    @property
    def name(self) -> str: ...
    @property
    def context(self) -> SpanContext | None: ...
    @property
    def parent(self) -> SpanContext | None: ...
    @property
    def kind(self) -> SpanKind: ...
    @property
    def start_time(self) -> int | None: ...
    @property
    def end_time(self) -> int | None: ...
    @property
    def attributes(self) -> Mapping[str, Any] | None: ...
    @property
    def dropped_attributes(self) -> int: ...
    @property
    def events(self) -> Sequence[Event]: ...
    @property
    def dropped_events(self) -> int: ...
    @property
    def links(self) -> Sequence[Link]: ...
    @property
    def dropped_links(self) -> int: ...
    @property
    def status(self) -> Status: ...
    @property
    def resource(self) -> Resource: ...
    @property
    def instrumentation_scope(self) -> InstrumentationScope | None: ...


log = logging.getLogger("svc.otlp")

_EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_KIND = {
    SpanKind.INTERNAL: b"\x30\x01",
    SpanKind.SERVER: b"\x30\x02",
    SpanKind.CLIENT: b"\x30\x03",
    SpanKind.PRODUCER: b"\x30\x04",
    SpanKind.CONSUMER: b"\x30\x05",
}
# Span.flags (field 16, fixed32): "the parent's is_remote is known" (0x100), "and it is remote" (0x200).
_FLAGS_LOCAL = b"\x85\x01" + struct.pack("<I", 0x100)
_FLAGS_REMOTE = b"\x85\x01" + struct.pack("<I", 0x300)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_BYTE = [bytes((i,)) for i in range(128)]
_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack
_KEY_CACHE_MAX = 1024
_key_cache: dict[str, bytes] = {}
_ATTRIBUTE_CACHE_MAX = 4096
_attribute_cache: dict[tuple[bytes, str, Any], bytes] = {}


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _BYTE[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field."""
    return tag + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:  # noqa: PLR0911 - one return per oneof member, in the SDK's order
    """An AnyValue message (oneof: set even when the value is a default like "" or 0)."""
    if isinstance(value, str):
        return _field(b"\x0a", value.encode())
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"{value} does not fit int64")
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if isinstance(value, float):
        return b"\x21" + _pack_double(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if value is None:
        return b""
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join([_field(b"\x0a", _any_value(v)) for v in value]))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join([_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()]))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key(key: str) -> bytes:
    encoded = _key_cache.get(key)
    if encoded is None:
        encoded = _field(b"\x0a", key.encode()) if key else b""
        if len(_key_cache) < _KEY_CACHE_MAX:
            _key_cache[key] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    return _key(key) + _field(b"\x12", _any_value(value))


def _attributes(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """Each attribute as one repeated KeyValue field; one that cannot be encoded is logged and left out.

    Most attributes repeat (method, route, status, db.*): their whole field is cached by (tag, key, value),
    for str and int values only (True == 1, so bools never share an entry with ints).
    """
    if not attributes:
        return []
    fields = []
    cache = _attribute_cache
    for key, value in attributes.items():
        kind = type(value)
        cacheable = kind is str or kind is int
        if cacheable:
            encoded = cache.get((tag, key, value))
            if encoded is not None:
                fields.append(encoded)
                continue
        try:
            encoded = _field(tag, _key_value(key, value))
        except Exception as error:  # the SDK's encoder does the same
            log.exception("Failed to encode key %s: %s", key, error)
            continue
        fields.append(encoded)
        if cacheable:
            if len(cache) >= _ATTRIBUTE_CACHE_MAX:
                cache.clear()  # unique values (paths, ids) come and go; the common ones come right back
            cache[(tag, key, value)] = encoded
    return fields


def _uint(tag: bytes, value: int | None) -> bytes:
    return tag + _varint(value) if value else b""


def _string(tag: bytes, value: str | None) -> bytes:
    return _field(tag, value.encode()) if value else b""


def _flags(parent: SpanContext | None) -> bytes:
    return _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL


def _span(span: SpanData) -> bytes:
    ctx = span.context
    if ctx is None:
        raise ValueError(f"span {span.name!r} has no context")
    parts = [
        b"\x0a\x10" + ctx.trace_id.to_bytes(16, "big"),
        b"\x12\x08" + ctx.span_id.to_bytes(8, "big"),
    ]
    if ctx.trace_state:
        parts.append(_string(b"\x1a", ",".join(f"{k}={v}" for k, v in ctx.trace_state.items())))
    parent = span.parent
    if parent is not None:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
    parts.append(_string(b"\x2a", span.name))
    parts.append(_KIND[span.kind])
    if span.start_time:
        parts.append(b"\x39" + _pack_fixed64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _pack_fixed64(span.end_time))
    parts += _attributes(b"\x4a", span.attributes)
    parts.append(_uint(b"\x50", span.dropped_attributes))
    for event in span.events:
        event_parts = [b"\x09" + _pack_fixed64(event.timestamp) if event.timestamp else b""]
        event_parts.append(_string(b"\x12", event.name))
        event_parts += _attributes(b"\x1a", event.attributes)
        event_parts.append(_uint(b"\x20", event.dropped_attributes))
        parts.append(_field(b"\x5a", b"".join(event_parts)))
    parts.append(_uint(b"\x60", span.dropped_events))
    for link in span.links:
        link_parts = [
            b"\x0a\x10" + link.context.trace_id.to_bytes(16, "big"),
            b"\x12\x08" + link.context.span_id.to_bytes(8, "big"),
        ]
        link_parts += _attributes(b"\x22", link.attributes)
        link_parts.append(_uint(b"\x28", link.dropped_attributes))
        link_parts.append(b"\x35" + struct.pack("<I", 0x300 if link.context.is_remote else 0x100))
        parts.append(_field(b"\x6a", b"".join(link_parts)))
    parts.append(_uint(b"\x70", span.dropped_links))
    status = span.status
    status_body = _string(b"\x12", status.description) + _uint(b"\x18", status.status_code.value)
    parts.append(_field(b"\x7a", status_body))
    parts.append(_flags(parent))
    return b"".join(parts)


def _resource(resource: Resource) -> bytes:
    return _field(b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes)))


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return _field(b"\x0a", b"")
    body = _string(b"\x0a", scope.name) + _string(b"\x12", scope.version)
    body += b"".join(_attributes(b"\x1a", scope.attributes))
    return _field(b"\x0a", body)


def encode_spans_bytes(spans: Sequence[SpanData]) -> bytes:
    """An ExportTraceServiceRequest for spans, serialised: grouped by resource, then by scope, in first-seen order."""
    # Grouped by identity first: Resource.__hash__ serialises its attributes to JSON on every call.
    by_identity: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]] = {}
    for span in spans:
        resource = span.resource
        entry = by_identity.get(id(resource))
        if entry is None:
            entry = by_identity[id(resource)] = (resource, {})
        scope = span.instrumentation_scope or None
        scope_entry = entry[1].get(id(scope))
        if scope_entry is None:
            scope_entry = entry[1][id(scope)] = (scope, [])
        scope_entry[1].append(_field(b"\x12", _span(span)))
    # Then by equality, as the SDK's encoder groups them (equal resources from different providers merge).
    grouped: dict[Resource, dict[InstrumentationScope | None, list[bytes]]] = {}
    for resource, scopes_by_id in by_identity.values():
        scopes = grouped.setdefault(resource, {})
        for scope, encoded_spans in scopes_by_id.values():
            scopes.setdefault(scope, []).extend(encoded_spans)
    out = []
    for resource, scopes in grouped.items():
        resource_parts = [_resource(resource)]
        for scope, encoded in scopes.items():
            scope_body = _scope(scope) + b"".join(encoded)
            scope_body += _string(b"\x1a", scope.schema_url if scope else None)
            resource_parts.append(_field(b"\x12", scope_body))
        resource_parts.append(_string(b"\x1a", resource.schema_url))
        out.append(_field(b"\x0a", b"".join(resource_parts)))
    return b"".join(out)
