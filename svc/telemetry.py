"""Telemetry: one bundle of tracer, metrics and error reporter per service instance, built from Config."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import SpanProcessor
from opentelemetry.trace import Tracer, TracerProvider

from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.errors import ErrorReporter
from svc.metrics import Metrics
from svc.throttle import LineThrottle
from svc.tracing import build_tracer_provider, shutdown_tracing

__all__ = ["DropCounter", "Telemetry"]

log = logging.getLogger("svc.telemetry")


class DropCounter:
    """Counts dropped telemetry by reason in a metric; logs a summary at most once per interval, never per item."""

    def __init__(
        self, metrics: Metrics, signal: str, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._metric = metrics.dropped
        self._signal = signal
        # Called from export threads and the request path: LineThrottle keeps the counts consistent under its lock.
        self._lines = LineThrottle(interval, clock)

    def __call__(self, count: int, reason: str) -> None:
        self._metric.labels(self._signal, reason).inc(count)
        pending = self._lines.admit_parts(self._signal, reason, count)
        if not pending:
            return
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(pending.items()))
        log.warning("telemetry dropped: %d %s (%s)", sum(pending.values()), self._signal, reasons)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What the request path and the admin listener need to emit signals."""

    tracer_provider: TracerProvider
    tracer: Tracer
    metrics: Metrics
    errors: ErrorReporter

    @classmethod
    def from_config(cls, config: Config, build: BuildInfo, span_processors: Sequence[SpanProcessor] = ()) -> Telemetry:
        """Fresh provider, registry and Sentry client: nothing global, so tests can run many side by side."""
        metrics = Metrics(build)
        provider = build_tracer_provider(config, build, DropCounter(metrics, "spans"), span_processors)
        return cls(
            tracer_provider=provider,
            tracer=provider.get_tracer("svc", build.version),
            metrics=metrics,
            errors=ErrorReporter(config, build, DropCounter(metrics, "errors")),
        )

    def shutdown(self, timeout: float) -> None:
        """Flush spans and error events, each bounded by timeout seconds; log how long that took."""
        start = time.perf_counter()
        spans_flushed = shutdown_tracing(self.tracer_provider, timeout)
        self.errors.close(timeout)
        took = time.perf_counter() - start
        log.info(
            "telemetry flushed in %.3f s%s",
            took,
            "" if spans_flushed else " (span export cut off at its bound)",
            extra={"event.duration": int(took * 1e9)},
        )
