"""Reads the W3C `traceresponse` header svc sends: version 00, trace id, span id and trace flags."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TraceResponse", "parse_traceresponse"]

# Trace Context Level 2: the traceparent format, lowercase hex only; version 00 is the one svc writes.
_FORMAT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_SAMPLED = 0x01


@dataclass(frozen=True, slots=True)
class TraceResponse:
    """The parts of one `traceresponse` header."""

    trace_id: str
    span_id: str
    flags: int

    @property
    def sampled(self) -> bool:
        """Whether the sampled flag is set: the trace was recorded and exported."""
        return bool(self.flags & _SAMPLED)


def parse_traceresponse(header: str | None) -> TraceResponse | None:
    """The header's parts; None when it is absent, malformed, or carries an all-zero id (invalid in W3C)."""
    match = _FORMAT.fullmatch(header or "")
    if match is None:
        return None
    trace_id, span_id, flags = match.groups()
    if int(trace_id, 16) == 0 or int(span_id, 16) == 0:
        return None
    return TraceResponse(trace_id, span_id, int(flags, 16))
