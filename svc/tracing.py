"""Tracing: the service's own span recorder, sampler and OTLP export, configured from Config alone."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, sampling
from opentelemetry.trace import NoOpTracerProvider
from opentelemetry.trace import TracerProvider as ApiTracerProvider

from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.export import BatchExporter, GrpcSender, HttpSender, OnDrop, Sender, Tls
from svc.spans import RecordedSpan, Recorder, SpanSink

__all__ = ["SdkProcessorSink", "TracingProvider", "build_tracer_provider", "make_sampler", "shutdown_tracing"]

# Bounded queue: a dead collector costs at most this many spans of memory, then spans are dropped and counted.
MAX_QUEUE = 2048
BATCH_SIZE = 512
SCHEDULE_DELAY = 1.0


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


def _sender(config: Config) -> Sender | None:
    headers = tuple(config.otlp_headers or ())
    tls = Tls(config.otlp_certificate, config.otlp_client_certificate, config.otlp_client_key)
    if config.otlp_protocol == "grpc":
        endpoint = config.otlp_traces_endpoint or config.otlp_endpoint
        return GrpcSender(endpoint, headers, tls) if endpoint is not None else None
    if config.otlp_traces_endpoint is not None:
        return HttpSender(config.otlp_traces_endpoint, headers, tls)
    if config.otlp_endpoint is not None:
        # The spec: the signal path is appended to the base endpoint for http/protobuf only.
        return HttpSender(config.otlp_endpoint.rstrip("/") + "/v1/traces", headers, tls)
    return None


class SdkProcessorSink:
    """Feeds an SDK SpanProcessor (tests' in-memory exporters): on_end with a ReadableSpan built publicly."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor

    def on_end(self, span: RecordedSpan) -> None:
        self.processor.on_end(span.to_readable())


class TracingProvider(Recorder):
    """The Recorder plus what the service's lifecycle needs: flush and a bounded shutdown of the export."""

    def __init__(
        self, resource: Resource, sampler: sampling.Sampler, exporter: BatchExporter | None, sinks: Sequence[SpanSink]
    ) -> None:
        super().__init__(resource, sampler, ([exporter] if exporter is not None else []) + list(sinks))
        self._exporter = exporter
        self._processors = [sink.processor for sink in sinks if isinstance(sink, SdkProcessorSink)]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Export what is queued now."""
        flushed = self._exporter.force_flush(timeout_millis / 1000) if self._exporter is not None else True
        return all([processor.force_flush(timeout_millis) for processor in self._processors]) and flushed

    def shutdown(self, timeout: float) -> bool:
        """Flush and stop export, waiting at most timeout seconds: a dead collector must not hold the exit."""
        done = self._exporter.shutdown(timeout) if self._exporter is not None else True
        for processor in self._processors:
            processor.shutdown()
        return done


def build_tracer_provider(
    config: Config, build: BuildInfo, on_drop: OnDrop, processors: Sequence[SpanProcessor] = ()
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
    sender = _sender(config)
    exporter = None
    if sender is not None:
        exporter = BatchExporter(
            sender,
            on_drop,
            max_queue=MAX_QUEUE,
            batch_size=BATCH_SIZE,
            delay=SCHEDULE_DELAY,
            timeout=config.otlp_timeout_ms / 1000,
        )
    sampler = make_sampler(config.sampler, config.sampler_arg)
    return TracingProvider(resource, sampler, exporter, [SdkProcessorSink(p) for p in processors])


def shutdown_tracing(provider: ApiTracerProvider, timeout: float) -> bool:
    """Flush and stop export, waiting at most timeout seconds: a dead collector must not hold the exit."""
    if not isinstance(provider, TracingProvider):
        return True
    return provider.shutdown(timeout)
