"""Metrics: the admin /metrics endpoint, in both expositions, with bounded labels and exemplars that lead to traces."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.otlp_receivers import OtlpGrpcReceiver, ReceivedSpan
from harness.polling import wait_for
from harness.service import ServiceThread, base_env, service_thread
from svc.buildinfo import read_build_info
from tests.telemetry.support import Scrape, scrape, trace_response

UNKNOWN_PATHS = 1000


@dataclass
class Metered:
    """One service for the whole module, exporting spans to a gRPC receiver."""

    svc: ServiceThread
    otlp: OtlpGrpcReceiver
    client: httpx.Client


@pytest.fixture(scope="module")
def metered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    with OtlpGrpcReceiver() as otlp:
        env = base_env(tmp_path_factory.mktemp("svc"), OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint)
        with service_thread(env) as svc, httpx.Client(timeout=10) as client:
            yield Metered(svc, otlp, client)


def test_classic_text_format_is_served_without_an_accept_header(metered: Metered) -> None:
    assert metered.client.get(f"{metered.svc.url}/version").status_code == 200

    result = scrape(metered.svc.admin_url)

    assert result.content_type.startswith("text/plain; version=0.0.4")
    assert "# EOF" not in result.text
    assert " # {" not in result.text  # exemplars exist only in OpenMetrics
    assert result.value("http_server_requests_total", method="GET", route="/version", status_code="200") >= 1


def test_openmetrics_scrape_carries_an_exemplar_whose_trace_id_matches_an_exported_span(metered: Metered) -> None:
    # A label set no other test in this module uses, so its exemplars can only come from this request.
    response = metered.client.delete(f"{metered.svc.url}/links/exemplar-probe")
    assert response.status_code == 404
    trace_id = trace_response(response).trace_id

    result = scrape(metered.svc.admin_url, openmetrics=True)

    assert result.content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert result.text.endswith("# EOF\n")
    labels = {"method": "DELETE", "route": "/links/{slug}", "status_code": "404"}
    buckets = [
        s
        for s in result.named("http_server_request_duration_seconds_bucket")
        if s.exemplar is not None and all(s.labels.get(k) == v for k, v in labels.items())
    ]
    assert len(buckets) == 1, buckets
    assert buckets[0].exemplar is not None
    assert buckets[0].exemplar.labels == {"trace_id": trace_id}
    [counter] = [s for s in result.named("http_server_requests_total") if s.labels == labels]
    assert counter.exemplar is not None
    assert counter.exemplar.labels == {"trace_id": trace_id}
    [span] = metered.otlp.spans("DELETE /links/{slug}", trace_id=trace_id)
    assert span.kind == "SERVER"


def test_build_info_and_process_gc_and_platform_collectors_are_exposed(metered: Metered) -> None:
    result = scrape(metered.svc.admin_url)
    build = read_build_info()

    assert result.value("svc_build_info", version=build.version or "unknown", commit=build.commit or "unknown") == 1
    assert len(result.named("svc_build_info")) == 1
    names = {s.name for s in result.samples}
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "python_gc_objects_collected_total",
        "python_gc_collections_total",
        "python_info",
    ):
        assert name in names, name


def test_red_metrics_count_and_time_requests_by_method_route_and_status(metered: Metered) -> None:
    url, client = metered.svc.url, metered.client
    before = scrape(metered.svc.admin_url)
    slug = "red-metrics"
    assert client.get(f"{url}/links/{slug}").status_code == 404
    assert client.get(f"{url}/links/{slug}").status_code == 404
    assert client.post(f"{url}/links", json={"url": "https://example.com/", "slug": slug}).status_code == 201
    found = client.get(f"{url}/links/{slug}")
    assert found.status_code == 200

    after = scrape(metered.svc.admin_url)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    get_404 = {"method": "GET", "route": "/links/{slug}", "status_code": "404"}
    get_200 = {**get_404, "status_code": "200"}
    assert delta("http_server_requests_total", **get_404) == 2
    assert delta("http_server_requests_total", **get_200) == 1
    assert delta("http_server_requests_total", method="POST", route="/links", status_code="201") == 1
    assert delta("http_server_request_duration_seconds_count", **get_404) == 2
    assert delta("http_server_request_duration_seconds_sum", **get_404) > 0
    assert delta("http_server_response_size_bytes_count", **get_200) == 1
    assert delta("http_server_response_size_bytes_sum", **get_200) == len(found.content)


def test_active_requests_gauge_counts_requests_in_flight(metered: Metered) -> None:
    def active() -> float:
        return scrape(metered.svc.admin_url).value("http_server_active_requests", method="GET")

    assert active() == 0
    slow = threading.Thread(target=lambda: httpx.get(f"{metered.svc.url}/slow?ms=1000", timeout=10))
    slow.start()
    try:
        wait_for(lambda: active() == 1, timeout=5, what="one GET in flight")
    finally:
        slow.join(10)
    assert active() == 0


def test_business_counters_move_with_links_created_and_redirects_served(metered: Metered) -> None:
    url, client = metered.svc.url, metered.client
    before = scrape(metered.svc.admin_url)

    assert client.post(f"{url}/links", json={"url": "https://example.com/b", "slug": "business"}).status_code == 201
    assert client.post(f"{url}/links", json={"url": "https://example.com/b", "slug": "business"}).status_code == 409
    assert client.get(f"{url}/r/business").status_code == 307
    assert client.get(f"{url}/r/business").status_code == 307
    assert client.get(f"{url}/r/no-such-link").status_code == 404

    after = scrape(metered.svc.admin_url)
    assert after.value("svc_links_created_total") - before.value("svc_links_created_total") == 1
    assert after.value("svc_redirects_total") - before.value("svc_redirects_total") == 2


@dataclass
class Flood:
    """The series before and after a flood of unknown paths, and the random tokens in those paths."""

    before: Scrape
    after: Scrape
    tokens: list[str]
    traced_requests: int


def _unknown_path(token: str, variant: int) -> str:
    return [
        f"/{token}",
        f"/{token}/{token}",
        f"/links/{token}/more",
        f"/r/{token}/x",
        f"/links/{token}",  # a real route whose slug is unknown: the template, status 404
        f"/docs-assets/{token}.js",
        f"/api/v1/{token}?q={token}",
    ][variant % 7]


@pytest.fixture(scope="module")
def flood(metered: Metered) -> Flood:
    """One unknown path of each shape, a scrape, then 1,000 random unknown paths and another scrape."""
    url, client = metered.svc.url, metered.client
    for variant in range(7):
        client.get(f"{url}{_unknown_path('warm-up', variant)}")
    before = scrape(metered.svc.admin_url)
    tokens = [uuid.uuid4().hex for _ in range(UNKNOWN_PATHS)]
    traced = 0
    for i, token in enumerate(tokens):
        path = _unknown_path(token, i)
        assert client.get(f"{url}{path}").status_code == 404, path
        traced += not path.startswith("/docs")
    after = scrape(metered.svc.admin_url)
    return Flood(before, after, tokens, traced)


def test_a_thousand_random_unknown_paths_add_no_metric_series(flood: Flood) -> None:
    new = flood.after.series() - flood.before.series()

    assert new == set()
    unmatched = {"method": "GET", "route": "unmatched", "status_code": "404"}
    assert flood.after.value("http_server_requests_total", **unmatched) > flood.before.value(
        "http_server_requests_total", **unmatched
    )
    labels = {value for sample in flood.after.samples for value in sample.labels.values()}
    assert not [t for t in flood.tokens if any(t in value for value in labels)]


def test_no_span_name_contains_a_raw_path(metered: Metered, flood: Flood) -> None:
    tokens = set(flood.tokens)

    def flooded(span: ReceivedSpan) -> bool:
        path = span.attributes.get("url.path", "")
        return span.kind == "SERVER" and any(part in tokens for part in path.split("/"))

    spans = metered.otlp.spans(where=flooded, count=flood.traced_requests, timeout=20)

    assert {s.name for s in spans} <= {"GET", "GET /links/{slug}"}
    assert not [s.name for s in spans if any(t in s.name for t in tokens)]
    for span in spans:
        assert span.attributes.get("http.route", "unmatched") in ("unmatched", "/links/{slug}")
        if span.name == "GET":
            assert "http.route" not in span.attributes
