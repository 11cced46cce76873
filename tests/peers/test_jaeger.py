"""Real Jaeger v2 loads the lab's deploy/jaeger/config.yaml, takes OTLP over gRPC and HTTP, and serves it back."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.peers.binaries import peer
from tests.peers.jaeger import CONFIG, JaegerPeer, parse_otlp_traces
from tests.peers.otlp import Protocol, exporter, send_server_span


def test_jaeger_validates_the_lab_config() -> None:
    result = subprocess.run(
        [peer("jaeger"), "validate", "--config", str(CONFIG)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_jaeger_validate_rejects_a_broken_config(tmp_path: Path) -> None:
    # Proves `validate` really checks components, so the test above means something.
    broken = tmp_path / "config.yaml"
    broken.write_text(
        CONFIG.read_text().replace("exporters: [jaeger_storage_exporter, spanmetrics]", "exporters: [nope]")
    )
    result = subprocess.run(
        [peer("jaeger"), "validate", "--config", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0


def test_jaeger_runs_the_lab_config_on_the_overridden_loopback_ports(jaeger: JaegerPeer) -> None:
    status = httpx.get(jaeger.health_url, timeout=5).json()
    assert status["healthy"] is True
    assert httpx.get(f"{jaeger.query_url}/api/services", timeout=5).status_code == httpx.codes.OK
    # The span-metrics exporter is up on its port too (the lab's Monitor tab source).
    assert httpx.get(f"http://{jaeger.spanmetrics_target}/metrics", timeout=5).status_code == httpx.codes.OK


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_jaeger_stores_an_otlp_span_and_the_query_api_returns_it(jaeger: JaegerPeer, protocol: Protocol) -> None:
    service = f"probe-{uuid.uuid4().hex[:8]}"
    span_exporter = exporter(protocol, jaeger.otlp_grpc_endpoint, jaeger.otlp_http_endpoint)
    trace_id = send_server_span(
        span_exporter, service, "GET /links/{slug}", "db.query", {"http.route": "/links/{slug}"}
    )

    trace = jaeger.wait_for_trace(trace_id, min_spans=2)
    root = trace.span("GET /links/{slug}")
    assert root.service == service
    assert root.attributes["http.route"] == "/links/{slug}"
    assert [child.name for child in trace.children(root)] == ["db.query"]

    assert service in jaeger.services()
    found = jaeger.find_traces(service, operation="GET /links/{slug}")
    assert [t.trace_id for t in found] == [trace_id]


def test_find_traces_is_empty_for_an_unknown_service(jaeger: JaegerPeer) -> None:
    assert jaeger.find_traces("no-such-service") == []
    assert jaeger.get_trace("0" * 31 + "1") is None


def test_otlp_json_answers_are_grouped_by_trace() -> None:
    body = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "a" * 32,
                                    "spanId": "1" * 16,
                                    "name": "GET /r/{slug}",
                                    "kind": 2,
                                    "attributes": [{"key": "http.response.status_code", "value": {"intValue": "307"}}],
                                },
                                {"traceId": "a" * 32, "spanId": "2" * 16, "parentSpanId": "1" * 16, "name": "db"},
                                {
                                    "traceId": "b" * 32,
                                    "spanId": "3" * 16,
                                    "name": "GET /healthz",
                                    "status": {"code": 2},
                                },
                            ]
                        }
                    ],
                }
            ]
        }
    }
    traces = {trace.trace_id: trace for trace in parse_otlp_traces(body)}
    first = traces["a" * 32]
    assert [span.name for span in first.roots] == ["GET /r/{slug}"]
    assert first.span("GET /r/{slug}").attributes == {"http.response.status_code": 307}
    assert [child.name for child in first.children(first.roots[0])] == ["db"]
    assert traces["b" * 32].spans[0].status_code == 2
