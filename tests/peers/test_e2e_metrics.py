"""End to end: real Prometheus scrapes the service's admin listener; its exemplars lead to traces in real Jaeger."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.service import service_process
from tests.peers.e2e import traced_env
from tests.peers.jaeger import JaegerPeer
from tests.peers.peer_fixtures import StartPrometheus

pytestmark = pytest.mark.slow


def test_prometheus_reports_request_rate_per_route_and_exemplars_found_in_jaeger(
    jaeger: JaegerPeer, prometheus: StartPrometheus, tmp_path: Path
) -> None:
    with service_process(traced_env(tmp_path, jaeger)) as svc:
        prom = prometheus({"svc": f"{svc.admin[0]}:{svc.admin[1]}"})
        # A first scrape before the traffic, so rate() sees the counters grow (rate ignores a series' first value).
        prom.wait_for_scrape("svc")
        prom.wait_for_query('http_server_requests_total{job="svc"}')

        created = httpx.post(f"{svc.url}/links", json={"url": "https://example.com/m", "slug": "metrics-1"}, timeout=5)
        assert created.status_code == httpx.codes.CREATED

        def traffic() -> None:
            assert httpx.get(f"{svc.url}/links/metrics-1", timeout=5).status_code == httpx.codes.OK
            assert httpx.get(f"{svc.url}/r/metrics-1", timeout=5).status_code == httpx.codes.TEMPORARY_REDIRECT
            assert httpx.get(f"{svc.url}/links/nope-404", timeout=5).status_code == httpx.codes.NOT_FOUND
            assert httpx.get(f"{svc.url}/links", timeout=5).status_code == httpx.codes.OK

        rate_query = 'sum by (route, status_code) (rate(http_server_requests_total{job="svc"}[1m])) > 0'
        wanted = {("/links/{slug}", "200"), ("/r/{slug}", "307"), ("/links/{slug}", "404"), ("/links", "200")}

        def rates() -> dict[tuple[str, str], float] | None:
            # Traffic on every poll: rate() needs a series to grow between two scrapes, and a label set seen for
            # the first time starts at its current value.
            traffic()
            series = prom.query(rate_query)
            found = {(s["metric"]["route"], s["metric"]["status_code"]): float(s["value"][1]) for s in series}
            return found if wanted <= found.keys() else None

        per_route = prom.wait_for(rates, f"rates of {sorted(wanted)}")
        assert not any("metrics-1" in route or "nope" in route for route, _ in per_route)  # templates, not raw paths

        exemplars = prom.wait_for(
            lambda: prom.query_exemplars('http_server_request_duration_seconds_bucket{job="svc"}') or None,
            "exemplars of the duration histogram",
        )
        trace_ids = {e["labels"]["trace_id"] for series in exemplars for e in series["exemplars"]}
        assert trace_ids
        for trace_id in sorted(trace_ids)[:3]:
            assert jaeger.wait_for_trace(trace_id).roots[0].service == "svc"
