"""Logging: every record becomes one ECS JSON line on stdout (or a readable line for humans)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from typing import IO, Any

import orjson
from opentelemetry import trace

from svc.config import Config

__all__ = [
    "REQUEST_ID",
    "ConsoleFormatter",
    "EcsJsonFormatter",
    "JsonLinesHandler",
    "LogDocument",
    "configure_logging",
    "escape_console",
    "json_handler_alone",
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


def _current_ids() -> tuple[str, str] | None:
    # Reads the active OTel span from contextvars, so any line written while a request is served carries its ids.
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class LogDocument:
    """Builds the one document every line is made of, for a LogRecord or for a line written without one."""

    def __init__(self, service: Mapping[str, str]) -> None:
        self.service = dict(service)
        # The last second formatted, so strftime runs once a second, not once a line. A tuple is swapped in
        # whole, so a thread never sees half of it.
        self._second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        seconds = int(created)
        millis = int((created - seconds) * 1000)
        cached_second, prefix = self._second
        if cached_second != seconds:
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
            self._second = (seconds, prefix)
        return f"{prefix}.{millis:03d}Z"

    def build(
        self,
        created: float,
        level_name: str,
        message: str,
        logger_name: str,
        fields: Mapping[str, Any],
        exc: BaseException | None = None,
    ) -> dict[str, Any]:
        """The ECS fields of one line: fields may hold anything (a record's __dict__); only EXTRA_FIELDS count."""
        doc: dict[str, Any] = {
            "@timestamp": self._timestamp(created),
            "log.level": level_name.lower(),
            "message": message,
            "log.logger": logger_name,
            **self.service,
            "event.dataset": "svc.server" if logger_name.startswith(SERVER_LOGGERS) else "svc.app",
        }
        if "trace.id" not in fields and (ids := _current_ids()) is not None:
            doc["trace.id"], doc["span.id"] = ids
        if (request_id := REQUEST_ID.get()) is not None:
            doc["http.request.id"] = request_id
        for key, value in fields.items():
            if key in EXTRA_FIELDS:
                doc[key] = value
        if exc is not None:
            doc["error.type"] = type(exc).__qualname__
            doc["error.message"] = str(exc)
            doc["error.stack_trace"] = "".join(traceback.format_exception(exc))
        return doc

    def of_record(self, record: logging.LogRecord) -> dict[str, Any]:
        """The document of a LogRecord: its extra= fields are attributes of the record."""
        exc = record.exc_info[1] if record.exc_info else None
        return self.build(record.created, record.levelname, record.getMessage(), record.name, record.__dict__, exc)


_UNICODE_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _json_line(doc: dict[str, Any]) -> str:
    """The document as one line of JSON that no value can break or forge."""
    # orjson escapes control characters, quotes and newlines, so user text cannot break or forge a line.
    text = orjson.dumps(doc, default=str).decode()
    # It leaves U+0085/U+2028/U+2029 raw (valid JSON), yet str.splitlines() and JavaScript break lines there.
    return text if text.isascii() else text.translate(_UNICODE_LINE_BREAKS)


class EcsJsonFormatter(logging.Formatter):
    """One JSON object per record, ECS field names, flat dotted keys with one type each."""

    def __init__(self, service: Mapping[str, str]) -> None:
        super().__init__()
        self.document = LogDocument(service)

    def format(self, record: logging.LogRecord) -> str:
        return _json_line(self.document.of_record(record))


class JsonLinesHandler(logging.StreamHandler[IO[str]]):
    """svc's JSON handler: a StreamHandler that also writes lines built without a LogRecord, batched.

    Every write to stdout releases the GIL; on one core each release lets the span export thread in, at a
    measured cost far above the write itself. Lines from `write_fields` queued in one loop iteration go out in
    one write at the start of the next (well under a millisecond later). Any other record first writes the
    queued lines, so the order on the stream stays the order of the calls; flush() and close() write them too.
    """

    def __init__(self, stream: IO[str], service: Mapping[str, str]) -> None:
        super().__init__(stream)
        self.setFormatter(EcsJsonFormatter(service))
        self._queued: list[str] = []
        self._drain_scheduled = False

    def write_fields(self, level: int, message: str, logger_name: str, fields: Mapping[str, Any]) -> bool:
        """Write the line logging.getLogger(logger_name).log(level, message, extra=fields) would, without a
        LogRecord (a third of the cost); False if it could not (the caller then logs the usual way)."""
        formatter = self.formatter
        if not isinstance(formatter, EcsJsonFormatter):
            return False
        doc = formatter.document.build(time.time(), logging.getLevelName(level), message, logger_name, fields)
        try:
            self._write_soon(_json_line(doc) + self.terminator)
        except Exception:
            return False
        return True

    def _write_soon(self, line: str) -> None:
        # Queued for the end of this loop iteration; written now outside a loop.
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


def json_handler_alone(logger: logging.Logger, level: int) -> JsonLinesHandler | None:
    """The JsonLinesHandler a record from logger at level would reach, if it would reach it and nothing else.

    Anything else that would see the record (a filter, a second handler such as pytest's caplog, a handler on
    a child logger) means the record must be made, so the caller logs the usual way.
    """
    if logger.filters:
        return None
    current: logging.Logger | None = logger
    while current is not None:
        if current.handlers:
            if current.parent is not None or len(current.handlers) != 1:
                return None
            handler = current.handlers[0]
            if not isinstance(handler, JsonLinesHandler) or handler.filters or level < handler.level:
                return None
            return handler
        if not current.propagate:
            return None
        current = current.parent
    return None


def escape_console(text: str) -> str:
    """Control characters (newlines, ANSI escapes) shown as escapes so a value cannot fake a console line."""
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text


class ConsoleFormatter(logging.Formatter):
    """A readable line for humans at a terminal: time, level, message, then the interesting fields."""

    def __init__(self, service: Mapping[str, str]) -> None:
        super().__init__()
        self.document = LogDocument(service)

    def format(self, record: logging.LogRecord) -> str:
        doc = self.document.of_record(record)
        head = f"{doc['@timestamp'][11:23]} {doc['log.level'].upper():<7} {escape_console(doc['message'])}"
        skip = {"@timestamp", "log.level", "message", "error.stack_trace", *self.document.service}
        tail = " ".join(f"{k}={escape_console(str(v))}" for k, v in doc.items() if k not in skip)
        stack = f"\n{doc['error.stack_trace']}" if "error.stack_trace" in doc else ""
        return f"{head}  {tail}{stack}"


def configure_logging(config: Config, version: str | None, stream: IO[str]) -> None:
    """Route the root logger and the server's loggers to one handler on stream.

    For JSON that handler is a JsonLinesHandler: the access log finds it on the root logger (json_handler_alone)
    and writes its lines through it without a LogRecord, so no module of svc keeps a handle on it.
    """
    service = {
        "service.name": config.service_name,
        "service.version": version or "unknown",
        "service.environment": config.environment,
    }
    handler: logging.StreamHandler[IO[str]]
    if config.log_format == "json":
        handler = JsonLinesHandler(stream, service)
    else:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(ConsoleFormatter(service))
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
