"""deploy/loadgen: the mix, the traced client, and a short run against the real svc whose log lines must carry
the trace ids of loadgen's client spans (so Jaeger shows loadgen -> svc traces)."""

from __future__ import annotations

import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, Tracer

from harness.http_backend import Reply, ScriptedServer
from harness.service import base_env, service_process
from svc.config import Config
from svc.main import openapi_document

from .files import DEPLOY, load_script


@pytest.fixture(scope="module")
def loadgen() -> ModuleType:
    return load_script(DEPLOY / "loadgen" / "loadgen.py", "loadgen")


@pytest.fixture
def spans() -> Iterator[tuple[Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_default_mix_includes_every_kind_of_traffic_the_lab_shows(loadgen: ModuleType) -> None:
    mix = loadgen.parse_mix(None)
    assert set(mix) == {"create", "read", "list", "redirect", "missing", "invalid", "slow", "fault"}
    assert all(weight > 0 for weight in mix.values())


def test_mix_can_be_overridden_by_name(loadgen: ModuleType) -> None:
    assert loadgen.parse_mix("create=1,fault=0") == {"create": 1, "fault": 0}


@pytest.mark.parametrize("raw", ["creat=1", "create", "create=-1", "create=0,fault=0", "create=x"])
def test_a_bad_mix_is_an_error_not_ignored(loadgen: ModuleType, raw: str) -> None:
    with pytest.raises(ValueError, match="LOADGEN_MIX"):
        loadgen.parse_mix(raw)


def test_every_planned_request_targets_a_route_svc_documents(loadgen: ModuleType, tmp_path: Path) -> None:
    # Span names are route templates, and those templates are the paths in svc's own OpenAPI document.
    config = Config.from_env(base_env(tmp_path, FAULTS_ENABLED="true").get)
    paths = set(json.loads(openapi_document(config))["paths"])
    state = loadgen.State()
    state.slugs.append("abc1234")
    rng = random.Random(1)
    calls = [loadgen.plan(op, state, rng) for op in loadgen.DEFAULT_MIX]
    assert {c.route for c in calls} <= paths
    assert all(c.path.split("?")[0] == c.route or "{slug}" in c.route for c in calls)


def test_reads_wait_for_a_created_slug(loadgen: ModuleType) -> None:
    call = loadgen.plan("read", loadgen.State(), random.Random(1))
    assert (call.op, call.method, call.route) == ("create", "POST", "/links")


def test_each_request_is_a_client_span_whose_context_travels_in_traceparent(
    loadgen: ModuleType, spans: tuple[Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    with ScriptedServer(lambda r: Reply(404, {"title": "Not Found"})) as server:
        status, _ = loadgen.send(
            server.url, loadgen.Call("GET", "/links/missing-1", route="/links/{slug}", op="missing"), tracer
        )
    (span,) = exporter.get_finished_spans()
    (request,) = server.requests()
    context = span.get_span_context()
    assert context is not None
    assert status == 404
    version, trace_id, parent_id, flags = request.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == ("00", f"{context.trace_id:032x}", f"{context.span_id:016x}")
    assert int(flags, 16) & 0x01, "sampled, so svc records the rest of the trace"
    assert (span.name, span.kind) == ("GET /links/{slug}", SpanKind.CLIENT)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404


def _one_span(loadgen: ModuleType, tracer: Tracer, exporter: InMemorySpanExporter, status: int) -> ReadableSpan:
    with ScriptedServer(lambda r: Reply(status, {})) as server:
        loadgen.send(server.url, loadgen.Call("GET", "/fault?tag=t", route="/fault", op="fault"), tracer)
    return exporter.get_finished_spans()[-1]


def test_a_5xx_marks_the_client_span_as_an_error_but_a_4xx_does_not(
    loadgen: ModuleType, spans: tuple[Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    assert _one_span(loadgen, tracer, exporter, 500).status.status_code is StatusCode.ERROR
    assert _one_span(loadgen, tracer, exporter, 400).status.status_code is StatusCode.UNSET


def test_no_answer_is_an_error_span_not_a_crash(
    loadgen: ModuleType, spans: tuple[Tracer, InMemorySpanExporter]
) -> None:
    tracer, exporter = spans
    status, _ = loadgen.send("http://127.0.0.1:9", loadgen.Call("GET", "/links", route="/links", op="list"), tracer)
    assert status == 0
    assert exporter.get_finished_spans()[0].status.status_code is StatusCode.ERROR


def test_heartbeat_check_passes_only_for_a_fresh_file(loadgen: ModuleType, tmp_path: Path) -> None:
    beat = tmp_path / "beat"
    assert loadgen.check_heartbeat(beat) == 1
    beat.touch()
    assert loadgen.check_heartbeat(beat) == 0
    assert loadgen.check_heartbeat(beat, now=lambda: time.time() + 60) == 1


def test_rate_is_configurable_and_never_exceeded(
    loadgen: ModuleType, spans: tuple[Tracer, InMemorySpanExporter]
) -> None:
    # A lower bound on time only: a busy machine can make loadgen slower than its rate, never faster.
    tracer, _ = spans
    stop = threading.Event()
    served = itertools.count(1)

    def respond(_: object) -> Reply:
        if next(served) >= 10:
            stop.set()
        return Reply(200, {"slug": "s"})

    with ScriptedServer(respond) as server:
        started = time.monotonic()
        loadgen.run(server.url, 20.0, {"list": 1}, 4, random.Random(1), tracer, stop, heartbeat=None)
        elapsed = time.monotonic() - started
    assert len(server.requests()) >= 10
    assert elapsed >= 9 / 20, f"10 requests at 20/s took {elapsed:.3f} s: faster than the rate"


def test_a_short_run_against_svc_yields_two_service_traces_and_every_outcome(
    loadgen: ModuleType, spans: tuple[Tracer, InMemorySpanExporter], tmp_path: Path
) -> None:
    tracer, exporter = spans
    stop = threading.Event()
    with service_process(base_env(tmp_path, FAULTS_ENABLED="true")) as svc:
        threading.Timer(3.0, stop.set).start()
        mix = {**loadgen.DEFAULT_MIX, "slow": 0, "fault": 10}
        state = loadgen.run(svc.url, 40.0, mix, 8, random.Random(3), tracer, stop, heartbeat=None)
        access = [line for line in svc.logs() if line.get("event.dataset") == "svc.access"]
    outcomes = {key.split(":")[1] for key in state.counts if not key.startswith("skipped")}
    assert {"2xx", "3xx", "4xx", "5xx"} <= outcomes, state.counts
    client_traces = {f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans() if s.context}
    served = {line["trace.id"] for line in access if line["url.path"] != "/readyz"}
    assert served
    assert served <= client_traces, "every request svc logged continues a loadgen trace"
