"""Dead backends: with nothing listening at the OTLP and Sentry endpoints, requests still succeed, promptly;
the losses are counted in svc_telemetry_dropped_total; and the service still stops within its flush bound."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling

from harness.backends import RefusingPort
from harness.polling import wait_for
from harness.service import base_env, service_process
from svc.export import BatchExporter, GrpcSender, HttpSender, Sender
from svc.main import FLUSH_TIMEOUT
from svc.spans import Recorder
from tests.telemetry.conftest import StartService
from tests.telemetry.support import scrape

# The most a request may take with every backend dead (they take microseconds when healthy; slack for CI).
PROMPT = 1.0


@pytest.fixture
def dead_otlp() -> Iterator[RefusingPort]:
    with RefusingPort() as port:
        yield port


@pytest.fixture
def dead_sentry_dsn() -> Iterator[str]:
    with RefusingPort() as port:
        yield f"http://deadkey@{port.host}:{port.port}/7"


def test_requests_succeed_promptly_while_otlp_and_sentry_are_unreachable(
    start_service: StartService, dead_otlp: RefusingPort, dead_sentry_dsn: str, client: httpx.Client
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead_otlp.url, "SENTRY_DSN": dead_sentry_dsn, "FAULTS_ENABLED": "true"}
    with start_service(**env) as svc:
        outcomes = []
        for i in range(40):
            slug = f"dead-{i}"
            for method, path, body, expected in (
                ("POST", "/links", {"url": "https://example.com/", "slug": slug}, 201),
                ("GET", f"/r/{slug}", None, 307),
                ("GET", "/fault", None, 500),
            ):
                start = time.monotonic()
                response = client.request(method, f"{svc.url}{path}", json=body)
                outcomes.append((path, response.status_code, expected, time.monotonic() - start))

    assert [(p, got) for p, got, expected, _ in outcomes if got != expected] == []
    slowest = max(outcomes, key=lambda o: o[3])
    assert slowest[3] < PROMPT, slowest


def test_lost_spans_and_error_events_are_counted_in_svc_telemetry_dropped_total(
    start_service: StartService, dead_otlp: RefusingPort, dead_sentry_dsn: str, client: httpx.Client
) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": dead_otlp.url,
        "OTEL_EXPORTER_OTLP_TIMEOUT": "500",  # fail each export fast; the count is what is under test
        "SENTRY_DSN": dead_sentry_dsn,
        "FAULTS_ENABLED": "true",
    }
    with start_service(**env) as svc:
        before = scrape(svc.admin_url)
        assert before.named("svc_telemetry_dropped_total") == []
        faults, versions = 3, 2
        for _ in range(faults):
            assert client.get(f"{svc.url}/fault").status_code == 500
        for _ in range(versions):
            assert client.get(f"{svc.url}/version").status_code == 200

        # Each request made exactly one span (no DB calls), and each fault one error event: all are lost.
        def dropped() -> tuple[float, float]:
            result = scrape(svc.admin_url)
            return (
                result.value("svc_telemetry_dropped_total", signal="spans", reason="export_failed"),
                result.value("svc_telemetry_dropped_total", signal="errors", reason="network_error"),
            )

        expected = (faults + versions, faults)
        wait_for(lambda: all(d >= e for d, e in zip(dropped(), expected, strict=True)), timeout=15, what="drops")
        assert dropped() == expected


def test_service_stops_within_its_flush_bound_while_the_otlp_endpoint_is_dead(
    start_service: StartService, dead_otlp: RefusingPort, dead_sentry_dsn: str, client: httpx.Client
) -> None:
    # The exporter alone would keep retrying a refused connection for up to 30 s before giving up.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead_otlp.url, "OTEL_EXPORTER_OTLP_TIMEOUT": "30000"}
    with start_service(**env, SENTRY_DSN=dead_sentry_dsn, FAULTS_ENABLED="true") as svc:
        for _ in range(5):
            assert client.get(f"{svc.url}/fault").status_code == 500
            assert client.get(f"{svc.url}/version").status_code == 200
        svc.stop.set()
        stopping = time.monotonic()
        wait_for(lambda: svc.exit_code is not None, timeout=4 * FLUSH_TIMEOUT, what="the service to exit")
        took = time.monotonic() - stopping

    assert svc.exit_code == 0
    # Spans and error events each get FLUSH_TIMEOUT; a second covers the listeners closing.
    assert took < 2 * FLUSH_TIMEOUT + 1.0, took


def test_a_dead_sentry_endpoint_does_not_write_a_log_line_per_lost_event(
    start_service: StartService, dead_sentry_dsn: str, client: httpx.Client
) -> None:
    faults = 20
    with start_service(SENTRY_DSN=dead_sentry_dsn, FAULTS_ENABLED="true") as svc:
        for _ in range(faults):
            assert client.get(f"{svc.url}/fault").status_code == 500
        wait_for(
            lambda: (
                scrape(svc.admin_url).value("svc_telemetry_dropped_total", signal="errors", reason="network_error")
                == faults
            ),
            timeout=10,
            what="every event counted as dropped",
        )
        lines = svc.logs()

    # Each request's own lines (the access line, the error line) are expected; a backend's trouble is a summary.
    own = {"svc.access", "svc.app", "svc.main", "httpx"}
    other = [
        (line["log.logger"], line["message"][:100])
        for line in lines
        if line["log.logger"] not in own and line["event.dataset"] != "svc.server"
    ]
    assert len([line for line in lines if line.get("error.type") == "InjectedFaultError"]) == faults
    assert len(other) < faults / 2, other


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_a_refused_export_leaves_no_reference_cycle_for_the_collector(dead_otlp: RefusingPort, protocol: str) -> None:
    # The SDK's exporters kept a failed export's error in a cycle (error -> traceback -> frame -> error) holding
    # the batch; freeing it took a full collection: 30-137 ms of the GIL, on the request path (issue 14).
    sender: Sender = (
        GrpcSender(dead_otlp.url, ()) if protocol == "grpc" else HttpSender(f"{dead_otlp.url}/v1/traces", ())
    )
    drops: list[tuple[int, str]] = []
    exporter = BatchExporter(
        sender, lambda n, why: drops.append((n, why)), max_queue=64, batch_size=8, delay=60, timeout=0.3
    )
    recorder = Recorder(Resource.create({}), sampling.ALWAYS_ON, [exporter])
    tracer = recorder.get_tracer("test")
    gc.collect()
    gc.disable()
    try:
        for i in range(32):
            tracer.start_span(f"span-{i}").end()
        assert exporter.force_flush(10)
        assert sum(n for n, _ in drops) == 32
        assert {why for _, why in drops} == {"export_failed"}
        assert gc.collect() == 0
    finally:
        gc.enable()
        exporter.shutdown(1)


def test_a_refusing_collector_triggers_no_full_collection_in_the_service(
    tmp_path: Path, dead_otlp: RefusingPort
) -> None:
    env = base_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=dead_otlp.url, OTEL_EXPORTER_OTLP_TIMEOUT="200")
    with service_process(env) as svc, httpx.Client(timeout=5) as client:
        before = scrape(svc.admin_url).value("python_gc_collections_total", generation="2")
        for _ in range(100):
            assert client.get(f"{svc.url}/version").status_code == 200

        def failed() -> float:
            return sum(s.value for s in scrape(svc.admin_url).named("svc_telemetry_dropped_total"))

        wait_for(lambda: failed() >= 100, timeout=15, what="every span's export to fail")
        after = scrape(svc.admin_url).value("python_gc_collections_total", generation="2")
    assert after == before
