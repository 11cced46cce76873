"""Real Prometheus, configured from the lab's file, scrapes an OpenMetrics target and keeps its exemplars."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from tests.peers.peer_fixtures import StartPrometheus

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def scrape_target() -> Iterator[str]:
    """A prometheus_client endpoint with one counter and one histogram carrying a trace-id exemplar."""
    registry = CollectorRegistry()
    requests = Counter("probe_requests", "Requests.", ["route"], registry=registry)
    duration = Histogram("probe_duration_seconds", "Duration.", ["route"], registry=registry)
    requests.labels(route="/links/{slug}").inc(3)
    duration.labels(route="/links/{slug}").observe(0.042, exemplar={"trace_id": TRACE_ID})
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_prometheus_scrapes_the_target_under_the_lab_job_name(prometheus: StartPrometheus, scrape_target: str) -> None:
    prom = prometheus({"svc": scrape_target})
    target = prom.wait_for_scrape("svc")
    assert target["scrapeUrl"] == f"http://{scrape_target}/metrics"
    series = prom.wait_for_query('probe_requests_total{job="svc"}')
    assert series[0]["metric"]["route"] == "/links/{slug}"
    assert float(series[0]["value"][1]) == 3.0


def test_prometheus_stores_exemplars_from_openmetrics(prometheus: StartPrometheus, scrape_target: str) -> None:
    prom = prometheus({"svc": scrape_target})
    prom.wait_for_scrape("svc")
    prom.wait_for_query("probe_duration_seconds_bucket")
    exemplars = prom.query_exemplars('probe_duration_seconds_bucket{job="svc"}')
    trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
    assert trace_ids == {TRACE_ID}


def test_prometheus_loads_the_lab_alert_rules(prometheus: StartPrometheus, scrape_target: str) -> None:
    prom = prometheus({"svc": scrape_target})
    assert prom.alert_names() == {"SvcDown", "SvcHighErrorRate", "SvcHighLatencyP99"}
