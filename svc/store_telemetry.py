"""What every store query reports, whichever database runs it: a client span, pool metrics, bounded warning lines."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from svc.metrics import Metrics
from svc.store import StorageFullError, StoreUnavailableError
from svc.throttle import LineThrottle

__all__ = ["WARNING_INTERVAL", "QueryTelemetry", "RateLimitedWarning"]

T = TypeVar("T")

log = logging.getLogger("svc.store")

# A database outage fails every request: one line per interval (with the count it stands for) says so without a flood.
WARNING_INTERVAL = 10.0


class RateLimitedWarning:
    """At most one warning line per interval and key; the next line says how many it stood for."""

    def __init__(self, interval: float = WARNING_INTERVAL) -> None:
        self._lines = LineThrottle(interval)

    def warn(self, key: str, message: str, exc: BaseException) -> None:
        """Log message (with the current trace id, when there is one) unless this key logged within the interval."""
        events = self._lines.admit(key)
        if not events:
            return
        suppressed = events - 1
        more = f" ({suppressed} more like it since the last line)" if suppressed else ""
        log.warning("%s%s", message, more, extra={"error.type": type(exc).__name__, "error.message": str(exc)[:200]})


class QueryTelemetry:
    """Runs one store call inside its CLIENT span (db semantic conventions, placeholders only) and counts failures."""

    def __init__(
        self,
        system: str,
        tracer: Tracer | None,
        metrics: Metrics | None,
        server: tuple[str, int] | None = None,
    ) -> None:
        self._tracer = tracer or trace.NoOpTracer()
        self._metrics = metrics
        self._base: dict[str, str | int] = {"db.system.name": system, "db.collection.name": "links"}
        if server is not None:
            self._base["server.address"], self._base["server.port"] = server
        self._warnings = RateLimitedWarning()

    async def run(self, operation: str, sql: str, work: Callable[[], Awaitable[T]]) -> T:
        """await work() as the query `sql` (text with placeholders, never values) performing `operation`."""
        if not trace.get_current_span().is_recording():
            # Outside a traced request (readiness probes, startup) a query span would be a root trace of its own.
            try:
                return await work()
            except (StoreUnavailableError, StorageFullError) as exc:
                self._failed(operation, exc)
                raise
        attributes = {**self._base, "db.operation.name": operation, "db.query.text": sql}
        # What start_as_current_span does, minus its two generator-based context managers (~4 µs a query).
        span = self._tracer.start_span(f"{operation} links", kind=SpanKind.CLIENT, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return await work()
        except Exception as exc:
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))
                span.set_attribute("error.type", type(exc).__name__)
            if isinstance(exc, StoreUnavailableError | StorageFullError):
                self._failed(operation, exc)  # inside the span's context: the line carries its trace id
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def _failed(self, operation: str, exc: StoreUnavailableError | StorageFullError) -> None:
        reason = exc.reason if isinstance(exc, StoreUnavailableError) else "storage_full"
        if self._metrics is not None:
            self._metrics.db_failures_for(reason).inc()
        system = self._base["db.system.name"]
        cause = exc.__cause__ or exc
        self._warnings.warn(reason, f"{system} query failed ({reason}): {operation} links: {exc}", cause)
