"""The per-request record: what one HTTP exchange was, read from the scope once and finished once at the end."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass

from litestar.types import HTTPScope
from opentelemetry.trace import Span

__all__ = ["KNOWN_METHODS", "LOGGED_VALUE_CHARS", "UNMATCHED", "Exchange", "sane_request_id"]

# Methods outside this set share one label value: a client sending random verbs must not add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
UNMATCHED = "unmatched"
# Client-chosen values copied into log lines and span attributes (url.path, user_agent.original) are cut to
# this many characters: the head cap bounds them at 16 KiB already, but a log line should stay a line.
LOGGED_VALUE_CHARS = 1024
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_ids = random.Random()  # seeded from os.urandom once


def sane_request_id(value: bytes | None) -> str:
    """The client's X-Request-ID if it is short and plain, else a fresh random one."""
    if value:
        text = value.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    # Not os.urandom: it releases the GIL for its syscall, and on one core every release hands the GIL to the
    # span export thread (measured: ~40 µs a request). A request id needs uniqueness, not secrecy.
    return f"{_ids.getrandbits(128):032x}"


@dataclass(slots=True, eq=False)
class Exchange:
    """One request and its response, as the span, the RED metrics and the access line all read it.

    Built once when the request arrives (`from_scope`); `send` fills in status and size, the server span its
    ids, `finish` the route and duration. Every consumer reads these fields; none recomputes them.
    """

    started_ns: int
    method: str  # normalised: one of KNOWN_METHODS or "_OTHER"
    path: str  # cut to LOGGED_VALUE_CHARS
    request_id: str
    user_agent: str
    client_address: str
    scheme: str
    http_version: str
    propagated: bool  # the request carried traceparent or baggage
    status: int = 0
    size: int = 0
    route: str = UNMATCHED
    duration_ns: int = 0
    # Set when a server span was started: its ids in hex, whether it was sampled, and the span itself.
    trace_id: str | None = None
    span_id: str | None = None
    sampled: bool = False
    span: Span | None = None

    @classmethod
    def from_scope(cls, scope: HTTPScope) -> Exchange:
        """The record of a request that has just arrived: its headers read in one pass."""
        started_ns = time.perf_counter_ns()
        raw_request_id = raw_user_agent = None
        propagated = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                raw_request_id = value
            elif name == b"user-agent":
                raw_user_agent = value
            elif name in (b"traceparent", b"baggage"):
                propagated = True
        path: str = scope["path"]
        client = scope.get("client")
        return cls(
            started_ns,
            scope["method"] if scope["method"] in KNOWN_METHODS else "_OTHER",
            path[:LOGGED_VALUE_CHARS] if len(path) > LOGGED_VALUE_CHARS else path,
            sane_request_id(raw_request_id),
            raw_user_agent[:LOGGED_VALUE_CHARS].decode("latin-1") if raw_user_agent else "",
            client[0] if client else "",
            scope.get("scheme", "http"),
            scope.get("http_version", "1.1"),
            propagated,
        )

    def finish(self, scope: HTTPScope) -> None:
        """Record the duration, and the route template Litestar's router put in the scope (if one matched)."""
        self.duration_ns = time.perf_counter_ns() - self.started_ns
        self.route = scope.get("path_template") or UNMATCHED

    @property
    def exemplar_trace_id(self) -> str | None:
        """The trace id a metric may point at: only a sampled trace can be looked up."""
        return self.trace_id if self.sampled else None
