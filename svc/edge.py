"""The HTTP edge: a bounded request head, a header-read timeout and a connection cap, enforced per connection."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from prometheus_client import Counter
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from svc.throttle import LineThrottle

__all__ = [
    "FD_RESERVE",
    "LOG_INTERVAL",
    "Edge",
    "EdgeProtocol",
    "connection_budget",
    "protocol_class",
    "watch_fds",
]

log = logging.getLogger("svc.edge")

# Seconds between two log lines about the same kind of rejection: a flood is one line and a count, not a flood.
LOG_INTERVAL = 10.0
# File descriptors kept out of the connection budget: SQLite, exporters, logs, the loop itself.
FD_RESERVE = 64
# At the connection cap, a connection whose head has been arriving for longer than this gives its slot to the
# new one (a real client sends its head in milliseconds; a slowloris never finishes), so trickling heads cannot
# keep fast clients out until HEADER_TIMEOUT frees their slots.
EVICT_AFTER = 1.0
# After an error answer the write side is shut and the socket lingers this long before closing, so the client
# can read the answer: closing with its unread input would reset the connection and drop the answer (Go waits
# 500 ms the same way before closing after a 431).
LINGER = 0.5
_REASONS = {
    431: "Request Header Fields Too Large",
    408: "Request Timeout",
    503: "Service Unavailable",
}


@dataclass
class Edge:
    """One listener's limits, its open connections and the rejection counter they feed."""

    listener: str
    max_head_bytes: int
    max_headers: int
    header_timeout: float
    max_connections: int
    rejected: Counter
    open: int = 0
    # Accepted connections that have not sent their first byte yet (shutdown waits for them to be read).
    fresh: set[EdgeProtocol] = field(default_factory=set)
    # Connections reading a head, oldest first, with the loop time the head began.
    heads: dict[EdgeProtocol, float] = field(default_factory=dict)
    _lines: LineThrottle = field(default_factory=lambda: LineThrottle(LOG_INTERVAL))

    def slowest_head(self, now: float) -> EdgeProtocol | None:
        """The connection whose head began longest ago, if that was more than EVICT_AFTER seconds ago."""
        for protocol, began in self.heads.items():
            return protocol if now - began > EVICT_AFTER else None
        return None

    def reject(self, reason: str, status: int | None, detail: str) -> None:
        """Count one rejection; log it unless the same reason was logged within LOG_INTERVAL."""
        self.rejected.labels(self.listener, reason).inc()
        count = self._lines.admit(reason)
        if not count:
            return
        extra: dict[str, Any] = {"event.dataset": "svc.edge", "labels.listener": self.listener, "error.type": reason}
        if status is not None:
            extra["http.response.status_code"] = status
        log.warning("%s: %s (%d since the last such line)", reason, detail, count, extra=extra)


def connection_budget(wanted: int, reserved: int) -> int:
    """The most connections the fd limit leaves room for, so the cap answers before the fd table runs out."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE - reserved))


def protocol_class(edge: Edge) -> type[EdgeProtocol]:
    """An EdgeProtocol bound to one listener's Edge (uvicorn's Config(http=...) takes a protocol class)."""
    return type(f"{edge.listener.title()}EdgeProtocol", (EdgeProtocol,), {"edge": edge})


class EdgeProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits uvicorn lacks: a bounded head, a head timeout, a cap.

    Why a subclass: uvicorn+httptools reads a request head of any size for any time (uvicorn has
    `timeout_keep_alive` and `limit_concurrency` only, the latter checked after the whole head is read).
    uvicorn takes a protocol class through Config(http=...); the methods extended here are asyncio.Protocol's,
    httptools' parser callbacks and uvicorn's on_response_complete (the callback its request cycle calls when a
    response is done; used only to never write an error answer into a response still being sent), each calling
    the original. Bytes are counted *before* the parser sees
    them, so a 50 MB header is refused at its first 16 KiB, not buffered. A request pipelined behind another
    in the same read is bounded by that read's size (256 KiB) rather than by the cap.
    """

    edge: ClassVar[Edge]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._edge_transport = transport
        self._edge_loop = asyncio.get_running_loop()
        self._edge_refused = False
        self._edge_in_flight = 0
        self._edge_timer: asyncio.TimerHandle | None = None
        self._start_head()
        self.edge.open += 1
        if self.edge.open > self.edge.max_connections:
            slowest = self.edge.slowest_head(self._edge_loop.time())
            if slowest is None:
                self.edge.reject("connection_limit", 503, f"{self.edge.max_connections} connections open, answered 503")
                self._refuse(503, "too many open connections; retry later")
                return
            self.edge.reject("slow_head_evicted", 408, "connection cap reached: the slowest head was closed")
            slowest._refuse(408, "request head too slow while the server is at its connection cap", linger=False)
        self.edge.fresh.add(self)
        self._begin_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.edge.open -= 1
        self.edge.fresh.discard(self)
        self.edge.heads.pop(self, None)
        self._stop_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._edge_refused:
            return  # the answer is written; what the client still sends is read and dropped until the close
        self.edge.fresh.discard(self)
        if self._edge_in_head:
            if self._edge_timer is None:
                self._begin_head()
            problem = self._scan(data)
            if problem is not None:
                self.edge.reject("header_limit", 431, problem)
                self._refuse(431, problem)
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        # The parser's word ends the head (it also accepts bare-LF heads the scan does not look for).
        self._edge_in_head = False
        self._stop_timer()
        self.edge.heads.pop(self, None)
        self._edge_in_flight += 1
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._start_head()

    def on_response_complete(self) -> None:
        self._edge_in_flight -= 1
        super().on_response_complete()

    def _begin_head(self) -> None:
        """The head clock starts: at the accept, or at the first byte of a later request."""
        self._edge_timer = self._edge_loop.call_later(self.edge.header_timeout, self._head_timed_out)
        self.edge.heads[self] = self._edge_loop.time()

    def _start_head(self) -> None:
        self._edge_in_head = True
        self._edge_head_bytes = 0
        self._edge_lines = 0
        self._edge_tail = b""

    def _scan(self, data: bytes) -> str | None:
        """Count this read's head bytes and lines; say what is over a limit, or None."""
        window = self._edge_tail + data
        end = window.find(b"\r\n\r\n")
        head = data if end < 0 else data[: end + 4 - len(self._edge_tail)]
        self._edge_head_bytes += len(head)
        self._edge_lines += head.count(b"\n")
        self._edge_tail = window[-3:]
        # Lines so far: the request line, the header lines, and (once complete) the empty line.
        headers = self._edge_lines - (2 if end >= 0 else 1)
        if self._edge_head_bytes > self.edge.max_head_bytes:
            return f"request head over {self.edge.max_head_bytes} bytes"
        if headers > self.edge.max_headers:
            return f"more than {self.edge.max_headers} header fields"
        return None

    def _head_timed_out(self) -> None:
        self._edge_timer = None
        if self._edge_transport.is_closing() or not self._edge_in_head:
            return
        if self._edge_head_bytes == 0:
            self._edge_transport.close()  # an idle connection that never started a request: nothing to answer
            self.edge.reject("header_timeout", None, f"no request within {self.edge.header_timeout:g} s, closed")
            return
        detail = f"request head not complete within {self.edge.header_timeout:g} s"
        self.edge.reject("header_timeout", 408, detail)
        self._refuse(408, detail)

    def _stop_timer(self) -> None:
        if self._edge_timer is not None:
            self._edge_timer.cancel()
            self._edge_timer = None

    def _refuse(self, status: int, detail: str, *, linger: bool = True) -> None:
        """Answer status with a problem+json body, shut the write side, close after LINGER (or now)."""
        self._edge_refused = True
        self._stop_timer()
        self.edge.heads.pop(self, None)
        transport = self._edge_transport
        if self._edge_in_flight:
            transport.close()  # a pipelined head behind a response being written: no room for a second answer
            return
        body = orjson.dumps({"type": "about:blank", "title": _REASONS[status], "status": status, "detail": detail})
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\ncontent-type: application/problem+json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        transport.write(head.encode() + body)
        if not linger:
            transport.close()  # its fd is needed now; a slowloris client need not read the answer
            return
        if transport.can_write_eof():
            transport.write_eof()
        self._edge_loop.call_later(LINGER, transport.close)


async def watch_fds(interval: float = 1.0, log_interval: float = LOG_INTERVAL) -> None:
    """Log (once per log_interval) when the process is within FD_RESERVE/2 of its fd limit.

    uvloop (libuv) answers an accept that fails with EMFILE by resetting the connection and says nothing;
    this is the line that says it. process_open_fds and process_max_fds are the metrics.
    """
    last = -log_interval
    while True:
        await asyncio.sleep(interval)
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            used = len(os.listdir("/proc/self/fd"))
        except OSError as exc:
            used = soft if exc.errno == 24 else -1  # EMFILE: not even one fd left to look
        if soft == resource.RLIM_INFINITY or used < soft - FD_RESERVE // 2:
            continue
        now = time.monotonic()
        if now - last >= log_interval:
            last = now
            extra: dict[str, Any] = {"event.dataset": "svc.edge", "error.type": "fd_exhausted"}
            log.error("file descriptors nearly exhausted: %d of %d open; new connections fail", used, soft, extra=extra)
