"""svc/tracing.py on its own: from Config to where spans go (the OTLP endpoint per protocol, test processors),
the resource they carry, the sampler named, and a shutdown that flushes."""

from __future__ import annotations

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import TracerProvider

from harness.backends import RefusingPort
from harness.http_backend import HttpBackend
from harness.otlp_receivers import OtlpGrpcReceiver, decode_request
from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.tracing import build_tracer_provider, make_sampler, shutdown_tracing

BUILD = BuildInfo(version="1.2.3", commit=None, commit_time=None, dirty=None)
Drops = list[tuple[int, str]]


@pytest.fixture
def drops() -> Drops:
    return []


def _provider(env: dict[str, str], drops: Drops, memory: InMemorySpanExporter | None = None) -> TracerProvider:
    config = Config.from_env(env.get)
    processors = [SimpleSpanProcessor(memory)] if memory is not None else []
    return build_tracer_provider(config, BUILD, lambda n, why: drops.append((n, why)), processors)


def _one_span_then_shutdown(provider: TracerProvider, name: str = "unit") -> None:
    provider.get_tracer("test").start_span(name).end()
    assert shutdown_tracing(provider, 5)


def test_grpc_spans_go_to_the_endpoint(drops: Drops) -> None:
    with OtlpGrpcReceiver() as collector:
        _one_span_then_shutdown(_provider({"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint}, drops))
        assert [span.name for span in collector.all_spans()] == ["unit"]
    assert drops == []


def test_http_spans_go_to_the_base_endpoint_plus_the_traces_path(endpoint: HttpBackend, drops: Drops) -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_ENDPOINT": f"{endpoint.url}/"}
    _one_span_then_shutdown(_provider(env, drops))
    [request] = endpoint.requests()
    assert request.path == "/v1/traces"
    assert [span.name for span in decode_request(ExportTraceServiceRequest.FromString(request.body))] == ["unit"]


def test_http_spans_go_to_a_traces_endpoint_as_it_is_given(endpoint: HttpBackend, drops: Drops) -> None:
    env = {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{endpoint.url}/t"}
    _one_span_then_shutdown(_provider(env, drops))
    assert [request.path for request in endpoint.requests()] == ["/t"]


def test_spans_that_cannot_be_exported_reach_on_drop(drops: Drops) -> None:
    with RefusingPort() as port:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": port.url, "OTEL_EXPORTER_OTLP_TIMEOUT": "300"}
        _one_span_then_shutdown(_provider(env, drops))
    assert drops == [(1, "export_failed")]


def test_extra_processors_see_finished_spans_with_the_services_resource(drops: Drops) -> None:
    memory = InMemorySpanExporter()
    env = {"OTEL_SERVICE_NAME": "unit-svc", "DEPLOYMENT_ENVIRONMENT": "unit-env"}
    _one_span_then_shutdown(_provider(env, drops, memory))
    [span] = memory.get_finished_spans()
    resource = dict(span.resource.attributes)
    assert (span.name, resource["service.name"], resource["service.version"]) == ("unit", "unit-svc", "1.2.3")
    assert resource["deployment.environment.name"] == "unit-env"


def test_sdk_disabled_records_nothing_and_shuts_down_at_once(drops: Drops) -> None:
    memory = InMemorySpanExporter()
    provider = _provider({"OTEL_SDK_DISABLED": "true"}, drops, memory)
    span = provider.get_tracer("test").start_span("unit")
    assert not span.is_recording()
    span.end()
    assert shutdown_tracing(provider, 5)
    assert memory.get_finished_spans() == ()


@pytest.mark.parametrize(
    ("name", "description"),
    [
        ("always_on", "AlwaysOnSampler"),
        ("always_off", "AlwaysOffSampler"),
        ("traceidratio", "TraceIdRatioBased{0.25}"),
        ("parentbased_always_on", "ParentBased{root:AlwaysOnSampler"),
        ("parentbased_always_off", "ParentBased{root:AlwaysOffSampler"),
        ("parentbased_traceidratio", "ParentBased{root:TraceIdRatioBased{0.25}"),
    ],
)
def test_each_otel_sampler_name_makes_that_sampler(name: str, description: str) -> None:
    assert make_sampler(name, 0.25).get_description().startswith(description)
