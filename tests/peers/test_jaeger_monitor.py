"""The lab's Monitor-tab wiring, run for real: Jaeger span metrics -> Prometheus -> Jaeger's metrics API."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.backends import free_port
from tests.peers.binaries import peer
from tests.peers.jaeger import JaegerPeer
from tests.peers.otlp import exporter, send_server_span
from tests.peers.process import wait_until
from tests.peers.prometheus import PrometheusPeer


@dataclass
class MonitorStack:
    jaeger: JaegerPeer
    prometheus: PrometheusPeer


@pytest.fixture
def monitor_stack(tmp_path: Path) -> Iterator[MonitorStack]:
    """Jaeger whose metric backend is a Prometheus that scrapes that Jaeger's span metrics (each needs the other's
    address first, so Prometheus' port is chosen up front)."""
    jaeger_bin, prometheus_bin = peer("jaeger"), peer("prometheus")
    prometheus_port = free_port()
    (tmp_path / "jaeger").mkdir()
    (tmp_path / "prometheus").mkdir()
    jaeger = JaegerPeer(jaeger_bin, tmp_path / "jaeger", prometheus_url=f"http://127.0.0.1:{prometheus_port}")
    try:
        prometheus = PrometheusPeer(
            prometheus_bin,
            tmp_path / "prometheus",
            {"jaeger-spanmetrics": jaeger.spanmetrics_target},
            port=prometheus_port,
        )
        try:
            yield MonitorStack(jaeger.wait_healthy(), prometheus.wait_ready())
        finally:
            prometheus.stop()
    finally:
        jaeger.stop()


def _call_rate_points(jaeger: JaegerPeer, service: str) -> list[dict[str, Any]]:
    params = {
        "service": service,
        "spanKind": "server",
        "endTs": str(int(time.time() * 1000)),
        "lookback": "120000",
        "step": "1000",
        "ratePer": "60000",
    }
    response = jaeger.http.get("/api/metrics/calls", params=params)
    response.raise_for_status()
    return [point for metric in response.json().get("metrics") or [] for point in metric.get("metricPoints") or []]


def test_span_metrics_reach_jaegers_monitor_api_through_prometheus(monitor_stack: MonitorStack) -> None:
    jaeger, prometheus = monitor_stack.jaeger, monitor_stack.prometheus
    service = f"probe-{uuid.uuid4().hex[:8]}"
    span_exporter = exporter("grpc", jaeger.otlp_grpc_endpoint, jaeger.otlp_http_endpoint)
    send_server_span(span_exporter, service, "GET /links/{slug}", "db.query", {"http.route": "/links/{slug}"})

    # The exact series names Jaeger's metric reader queries (namespace, unit and suffixes must all line up).
    calls = prometheus.wait_for_query(f'traces_span_metrics_calls_total{{service_name="{service}"}}', timeout=30)
    assert {series["metric"]["span_name"] for series in calls} == {"GET /links/{slug}", "db.query"}
    prometheus.wait_for_query(f'traces_span_metrics_duration_milliseconds_bucket{{service_name="{service}"}}')

    points = wait_until(lambda: _call_rate_points(jaeger, service) or None, 30, "call-rate points from Jaeger")
    assert all("gaugeValue" in point for point in points)
