"""Logging: every record becomes one ECS JSON line on stdout (or a readable line for humans)."""

from __future__ import annotations

import logging
import time
import traceback
from contextvars import ContextVar
from typing import IO, Any

import orjson
from opentelemetry import trace

from svc.config import Config

__all__ = ["REQUEST_ID", "ConsoleFormatter", "EcsJsonFormatter", "configure_logging", "escape_console"]

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


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


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


class EcsJsonFormatter(logging.Formatter):
    """One JSON object per record, ECS field names, flat dotted keys with one type each."""

    def __init__(self, service: dict[str, str]) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        # orjson escapes control characters, quotes and newlines, so user text cannot break or forge a line.
        return orjson.dumps(_fields(record, self._service), default=str).decode()


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
    handler = logging.StreamHandler(stream)
    formatter_class = EcsJsonFormatter if config.log_format == "json" else ConsoleFormatter
    handler.setFormatter(formatter_class(service))
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
