"""Logging: every record becomes one ECS JSON line on stdout (or a readable line for humans)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from contextvars import ContextVar
from typing import IO, Any

import orjson
from opentelemetry import trace

from svc.config import Config

__all__ = [
    "REQUEST_ID",
    "ConsoleFormatter",
    "EcsJsonFormatter",
    "configure_logging",
    "escape_console",
    "write_access_line",
]

# Loggers whose records are the server's own (startup, shutdown, protocol errors).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi", "asyncio")
# Fields a caller may attach through `extra=`; anything else is dropped so no line can grow a stray field.
EXTRA_FIELDS = frozenset(
    {
        "event.dataset",
        "http.request.method",
        "http.route",
        "url.path",
        "http.response.status_code",
        "http.response.body.bytes",
        "event.duration",
        "client.address",
        "user_agent.original",
        "http.request.id",
        "http.version",
        "trace.id",
        "span.id",
        "link.slug",
        "server.address",
        "server.port",
        "labels.listener",
        "error.type",
        "error.message",
    }
)


# The request being served, set by the access-log middleware so app lines carry its id too.
REQUEST_ID: ContextVar[str | None] = ContextVar("svc_request_id", default=None)


_second: tuple[int, str] = (-1, "")  # the last second formatted, so strftime runs once a second, not once a line


def _timestamp(created: float) -> str:
    global _second  # noqa: PLW0603 - a one-entry cache; a tuple is swapped in whole, so threads never see half
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    cached_second, prefix = _second
    if cached_second != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, prefix)
    return f"{prefix}.{millis:03d}Z"


def _current_ids() -> tuple[str, str] | None:
    # Reads the active OTel span from contextvars, so any line written while a request is served carries its ids.
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def _fields(record: logging.LogRecord, service: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": _timestamp(record.created),
        "log.level": record.levelname.lower(),
        "message": record.getMessage(),
        "log.logger": record.name,
        **service,
        "event.dataset": "svc.server" if record.name.startswith(SERVER_LOGGERS) else "svc.app",
    }
    if "trace.id" not in record.__dict__ and (ids := _current_ids()) is not None:
        doc["trace.id"], doc["span.id"] = ids
    if (request_id := REQUEST_ID.get()) is not None:
        doc["http.request.id"] = request_id
    for key, value in record.__dict__.items():
        if key in EXTRA_FIELDS:
            doc[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        doc["error.type"] = type(exc).__qualname__
        doc["error.message"] = str(exc)
        doc["error.stack_trace"] = "".join(traceback.format_exception(exc))
    return doc


_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


class EcsJsonFormatter(logging.Formatter):
    """One JSON object per record, ECS field names, flat dotted keys with one type each."""

    def __init__(self, service: dict[str, str]) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        return _json_line(_fields(record, self._service))


def _json_line(doc: dict[str, Any]) -> str:
    # orjson escapes control characters, quotes and newlines, so user text cannot break or forge a line.
    text = orjson.dumps(doc, default=str).decode()
    # It leaves U+0085/U+2028/U+2029 raw (valid JSON), yet str.splitlines() and JavaScript break lines there.
    return text if text.isascii() else text.translate(_UNICODE_LINE_BREAKS)


class _BatchingStreamHandler(logging.StreamHandler[IO[str]]):
    """A StreamHandler that also takes ready-made lines and writes them once per event-loop iteration.

    Every write to stdout releases the GIL; on one core each release lets the span export thread in, at a
    measured cost far above the write itself. Access lines queued in one loop iteration go out in one write at
    the start of the next (well under a millisecond later). Any other record first writes the queued lines,
    so the order on the stream stays the order of the calls; flush() and close() write them too.
    """

    def __init__(self, stream: IO[str]) -> None:
        super().__init__(stream)
        self._queued: list[str] = []
        self._drain_scheduled = False

    def write_soon(self, line: str) -> None:
        """Queue line (with its terminator) for the end of this loop iteration; write now outside a loop."""
        with self.lock or contextlib.nullcontext():
            self._queued.append(line)
            if self._drain_scheduled:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self._drain()
                return
            self._drain_scheduled = True
        loop.call_soon(self._drain_scheduled_lines)

    def _drain_scheduled_lines(self) -> None:
        with self.lock or contextlib.nullcontext():
            self._drain_scheduled = False
            self._drain()

    def _drain(self) -> None:
        if self._queued:
            text = "".join(self._queued)
            self._queued.clear()
            self.stream.write(text)
            super().flush()

    def emit(self, record: logging.LogRecord) -> None:
        # Called with the lock held (Handler.handle); the queued lines came first, so they are written first.
        if self._queued:
            try:
                self._drain()
            except Exception:
                self.handleError(record)
        super().emit(record)

    def flush(self) -> None:
        with self.lock or contextlib.nullcontext():
            if self._queued:
                self._drain()
            super().flush()


# The handler configure_logging installed, when it writes JSON: write_access_line's fast path writes through it.
_json_handler: _BatchingStreamHandler | None = None


def _only_json_handler_sees(logger: logging.Logger, level: int) -> _BatchingStreamHandler | None:
    """svc's JSON handler, if a record from logger at level would reach it and nothing else (no test handler...)."""
    handler = _json_handler
    if handler is None or logger.filters or handler.filters or level < handler.level:
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            return handler if current.handlers == [handler] and current.parent is None else None
        if not current.propagate:
            return None
        current = current.parent
    return None


def write_access_line(logger: logging.Logger, level: int, message: str, fields: dict[str, Any]) -> bool:
    """Write the line logger.log(level, message, extra=fields) would, without a LogRecord (a third of the cost).

    Only when the line would reach svc's own JSON handler and nothing else; returns False otherwise (or if the
    write fails), and the caller logs the usual way.
    """
    handler = _only_json_handler_sees(logger, level)
    if handler is None or not isinstance(handler.formatter, EcsJsonFormatter):
        return False
    # What _fields builds for the same record, in the same order.
    doc: dict[str, Any] = {
        "@timestamp": _timestamp(time.time()),
        "log.level": logging.getLevelName(level).lower(),
        "message": message,
        "log.logger": logger.name,
        **handler.formatter._service,
        "event.dataset": "svc.app",
    }
    if "trace.id" not in fields and (ids := _current_ids()) is not None:
        doc["trace.id"], doc["span.id"] = ids
    if (request_id := REQUEST_ID.get()) is not None:
        doc["http.request.id"] = request_id
    for key, value in fields.items():
        if key in EXTRA_FIELDS:
            doc[key] = value
    try:
        handler.write_soon(_json_line(doc) + handler.terminator)
    except Exception:
        return False
    return True


def escape_console(text: str) -> str:
    """Control characters (newlines, ANSI escapes) shown as escapes so a value cannot fake a console line."""
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class ConsoleFormatter(logging.Formatter):
    """A readable line for humans at a terminal: time, level, message, then the interesting fields."""

    def __init__(self, service: dict[str, str]) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = _fields(record, self._service)
        head = f"{doc['@timestamp'][11:23]} {doc['log.level'].upper():<7} {escape_console(doc['message'])}"
        skip = {"@timestamp", "log.level", "message", "error.stack_trace", *self._service}
        tail = " ".join(f"{k}={escape_console(str(v))}" for k, v in doc.items() if k not in skip)
        stack = f"\n{doc['error.stack_trace']}" if "error.stack_trace" in doc else ""
        return f"{head}  {tail}{stack}"


def configure_logging(config: Config, version: str | None, stream: IO[str]) -> None:
    """Route the root logger and the server's loggers to one handler on stream."""
    service = {
        "service.name": config.service_name,
        "service.version": version or "unknown",
        "service.environment": config.environment,
    }
    global _json_handler  # noqa: PLW0603 - the logging module's handlers are process-global already
    handler: logging.StreamHandler[IO[str]]
    if config.log_format == "json":
        handler = _json_handler = _BatchingStreamHandler(stream)
        handler.setFormatter(EcsJsonFormatter(service))
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(ConsoleFormatter(service))
        _json_handler = None
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(config.log_level.upper())
    # The server's loggers keep no handlers of their own: one handler, one format, one line per event.
    for name in (*SERVER_LOGGERS, "uvicorn.access"):
        server_logger = logging.getLogger(name)
        server_logger.handlers.clear()
        server_logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # svc writes its own access line
    logging.captureWarnings(True)
