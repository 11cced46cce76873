"""Helpers shared by the telemetry tests: trace ids from responses, metric scrapes, log filters, a span barrier."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_classic
from prometheus_client.samples import Sample

from harness.otlp_receivers import OtlpReceiver, ReceivedSpan
from harness.polling import wait_for
from harness.service import ServiceThread
from harness.traceresponse import TraceResponse, parse_traceresponse

__all__ = [
    "OPENMETRICS",
    "Scrape",
    "flush_spans",
    "request_lines",
    "scrape",
    "trace_response",
    "wait_request_lines",
]

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def trace_response(response: httpx.Response) -> TraceResponse:
    """The response's traceresponse header, checked for shape and for non-zero ids."""
    header = response.headers.get("traceresponse")
    assert header is not None, f"no traceresponse header on {response.request.url}: {dict(response.headers)}"
    parsed = parse_traceresponse(header)
    assert parsed is not None, f"not a W3C traceresponse with non-zero ids: {header}"
    return parsed


@dataclass(frozen=True, slots=True)
class Scrape:
    """One /metrics scrape: its content type, raw text and every sample."""

    content_type: str
    text: str
    samples: list[Sample]

    def series(self) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
        """Every (name, labels) pair present."""
        return {(s.name, tuple(sorted(s.labels.items()))) for s in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The value of the one sample with this name and exactly these labels (0 when absent)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, (name, labels, found)
        return found[0] if found else 0.0

    def named(self, name: str) -> list[Sample]:
        """All samples with this name."""
        return [s for s in self.samples if s.name == name]


def scrape(admin_url: str, *, openmetrics: bool = False) -> Scrape:
    """GET /metrics on the admin listener, as Prometheus with exemplar storage would (or without Accept)."""
    headers = {"Accept": OPENMETRICS} if openmetrics else {}
    response = httpx.get(f"{admin_url}/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    parse = parse_openmetrics if openmetrics else parse_classic
    samples = [sample for family in parse(response.text) for sample in family.samples]
    return Scrape(response.headers["content-type"], response.text, samples)


def flush_spans(client: httpx.Client, url: str, otlp: OtlpReceiver) -> ReceivedSpan:
    """A barrier: serve one traced request and wait for its span.

    The batch processor exports from one thread in the order spans ended, so once this span has arrived every
    span that ended before it has arrived too. Returns the barrier's own span (exclude its trace when asserting).
    """
    response = client.get(f"{url}/version")
    assert response.status_code == 200
    [span] = otlp.spans("GET /version", trace_id=trace_response(response).trace_id)
    return span


def request_lines(logs: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    """The log lines written while serving the request with this x-request-id."""
    return [line for line in logs if line.get("http.request.id") == request_id]


def wait_request_lines(svc: ServiceThread, request_id: str, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The request's log lines, once at least `count` of them have been written."""

    def found() -> list[dict[str, Any]] | None:
        lines = request_lines(svc.logs(), request_id)
        return lines if len(lines) >= count else None

    return wait_for(found, timeout, what=f"{count} log lines of request {request_id}")
