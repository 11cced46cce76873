"""Tracing: the service's own TracerProvider, sampler and OTLP export, configured from Config alone."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import NoOpTracerProvider
from opentelemetry.trace import TracerProvider as ApiTracerProvider

from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.otlp import FastGrpcSpanExporter as GrpcExporter
from svc.otlp import FastHttpSpanExporter as HttpExporter
from svc.spans import LeanTracerProvider

__all__ = ["CountingExporter", "DropCountingProcessor", "build_tracer_provider", "make_sampler", "shutdown_tracing"]

log = logging.getLogger("svc.tracing")

# Bounded queue: a dead collector costs at most this many spans of memory, then spans are dropped and counted.
MAX_QUEUE = 2048
BATCH_SIZE = 512
SCHEDULE_DELAY_MS = 1000
# The exporters log every failed or retried batch: one line a second while a collector is down. Drops are
# counted and summarised by the DropCounter, so their own lines get through at most once per interval (the
# first one says why exporting fails).
EXPORTER_LOGGERS = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._common",
)
EXPORTER_LOG_INTERVAL = 60.0
# A full collection takes ~10 ms of the export thread (measured at svc's heap size), holding the GIL.
FAILED_EXPORT_COLLECT_INTERVAL = 5.0


class _OncePerInterval(logging.Filter):
    """Lets one record through per interval, across every logger it is attached to."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self._interval = interval
        self._lock = threading.Lock()
        self._last = -interval

    def filter(self, record: logging.LogRecord) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last < self._interval:
                return False
            self._last = now
            return True


_EXPORTER_LOG_THROTTLE = _OncePerInterval(EXPORTER_LOG_INTERVAL)


def _throttle_exporter_logs() -> None:
    for name in EXPORTER_LOGGERS:
        logger = logging.getLogger(name)
        if _EXPORTER_LOG_THROTTLE not in logger.filters:
            logger.addFilter(_EXPORTER_LOG_THROTTLE)


def make_sampler(name: str, ratio: float) -> sampling.Sampler:
    """The OTEL_TRACES_SAMPLER names, mapped to SDK samplers."""
    samplers: dict[str, Callable[[], sampling.Sampler]] = {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBased(sampling.TraceIdRatioBased(ratio)),
    }
    return samplers[name]()


def _otlp_exporter(config: Config) -> SpanExporter | None:
    headers = dict(config.otlp_headers or ())
    timeout = config.otlp_timeout_ms / 1000
    if config.otlp_protocol == "grpc":
        endpoint = config.otlp_traces_endpoint or config.otlp_endpoint
        if endpoint is None:
            return None
        return GrpcExporter(endpoint=endpoint, headers=headers, timeout=timeout, meter_provider=NoOpMeterProvider())
    if config.otlp_traces_endpoint is not None:
        endpoint = config.otlp_traces_endpoint
    elif config.otlp_endpoint is not None:
        # The spec: the signal path is appended to the base endpoint for http/protobuf only.
        endpoint = config.otlp_endpoint.rstrip("/") + "/v1/traces"
    else:
        return None
    return HttpExporter(endpoint=endpoint, headers=headers, timeout=timeout, meter_provider=NoOpMeterProvider())


class CountingExporter(SpanExporter):
    """Wraps an exporter to count the spans a failed export loses, and to free them right away."""

    def __init__(self, inner: SpanExporter, on_drop: Callable[[int], None]) -> None:
        self._inner = inner
        self._on_drop = on_drop
        self._last_collect = -FAILED_EXPORT_COLLECT_INTERVAL

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        batch = list(spans)
        try:
            result = self._inner.export(batch)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._on_drop(len(batch))
            self._free_failed_export(batch)
        return result

    def _free_failed_export(self, batch: list[ReadableSpan]) -> None:
        # The SDK's OTLP exporters keep the error of a failed export on an object their own frame refers to:
        # a reference cycle (error -> traceback -> frame -> export result -> error) that holds the batch and
        # the encoded request.
        # It lives through the retries, so it is only freed by a full collection, which the service rarely
        # runs: with a backend down, RSS grew by about 0.4 MiB a minute (bench/results/rss-900s). Emptying
        # our copy of the batch frees the spans now; one full collection, at most every interval, frees the rest.
        batch.clear()
        now = time.monotonic()
        if now - self._last_collect >= FAILED_EXPORT_COLLECT_INTERVAL:
            self._last_collect = now
            gc.collect()

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class DropCountingProcessor(BatchSpanProcessor):
    """A BatchSpanProcessor that counts spans dropped on a full queue instead of logging each one."""

    def __init__(self, exporter: SpanExporter, on_drop: Callable[[int], None]) -> None:
        super().__init__(
            exporter,
            max_queue_size=MAX_QUEUE,
            schedule_delay_millis=SCHEDULE_DELAY_MS,
            max_export_batch_size=BATCH_SIZE,
            meter_provider=NoOpMeterProvider(),
        )
        self._on_drop = on_drop

    def on_end(self, span: ReadableSpan) -> None:
        # The SDK logs a warning per dropped span on a full queue: a log storm exactly when a backend is down.
        # len() of a deque is thread-safe; reading the private queue is the only way to know before emitting.
        sampled = span.context is not None and span.context.trace_flags.sampled
        if sampled and len(self._batch_processor._queue) >= MAX_QUEUE:
            self._on_drop(1)
            return
        super().on_end(span)


def build_tracer_provider(
    config: Config, build: BuildInfo, on_drop: Callable[[int], None], processors: Sequence[SpanProcessor] = ()
) -> ApiTracerProvider:
    """A provider owned by this service (never the global one); extra processors let tests see finished spans."""
    if config.otel_disabled:
        return NoOpTracerProvider()
    resource = Resource.create(
        {
            "service.name": config.service_name,
            "service.version": build.version or "unknown",
            "service.instance.id": f"{os.uname().nodename}-{os.getpid()}",
            "deployment.environment.name": config.environment,
        }
    )
    provider = LeanTracerProvider(resource=resource, sampler=make_sampler(config.sampler, config.sampler_arg))
    exporter = _otlp_exporter(config)
    if exporter is not None:
        _throttle_exporter_logs()
        provider.add_span_processor(DropCountingProcessor(CountingExporter(exporter, on_drop), on_drop))
    for processor in processors:
        provider.add_span_processor(processor)
    return provider


def shutdown_tracing(provider: ApiTracerProvider, timeout: float) -> bool:
    """Flush and stop export, waiting at most timeout seconds: a dead collector must not hold the exit."""
    if not isinstance(provider, TracerProvider):
        return True
    worker = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("span export did not finish within %.1f s; unexported spans are dropped", timeout)
        return False
    return True
