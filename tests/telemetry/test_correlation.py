"""Correlation: one request's log lines, span, exemplar and Sentry event all name the same trace."""

from __future__ import annotations

import re

import httpx

from harness.otlp_receivers import OtlpGrpcReceiver
from harness.sentry_ingest import SentryReceiver
from harness.service import ServiceThread
from tests.telemetry.support import scrape, trace_response, wait_request_lines

HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")


def test_one_failing_request_shares_one_trace_id_across_logs_span_exemplar_and_sentry_event(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, sentry: SentryReceiver, client: httpx.Client
) -> None:
    response = client.get(f"{traced.url}/fault", params={"tag": "correlate"})
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]

    lines = wait_request_lines(traced, request_id, 2)
    [access] = [line for line in lines if line["event.dataset"] == "svc.access"]
    [error] = [line for line in lines if line.get("error.type") == "InjectedFaultError"]
    trace_id = access["trace.id"]
    [span] = otlp.spans("GET /fault", trace_id=trace_id)
    event = sentry.wait_event(trace_id)
    [exemplar] = [
        s.exemplar
        for s in scrape(traced.admin_url, openmetrics=True).named("http_server_request_duration_seconds_bucket")
        if s.labels.get("route") == "/fault" and s.exemplar is not None
    ]

    assert HEX32.fullmatch(trace_id)
    assert trace_response(response).trace_id == trace_id
    assert error["trace.id"] == trace_id
    assert exemplar.labels["trace_id"] == trace_id
    assert event["contexts"]["trace"]["trace_id"] == trace_id
    # And the same span: the server span is what the log lines and the error event point at.
    assert access["span.id"] == error["span.id"] == span.span_id == event["contexts"]["trace"]["span_id"]
    assert access["log.level"] == "error"
    assert access["http.response.status_code"] == 500
    assert error["log.level"] == "error"
    assert "InjectedFaultError: injected fault correlate" in error["error.stack_trace"]


def test_every_log_line_written_while_serving_a_request_carries_its_trace_and_span_ids(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    response = client.post(f"{traced.url}/links", json={"url": "https://example.com/logs", "slug": "log-ids"})
    assert response.status_code == 201
    ids = trace_response(response)
    request_id = response.headers["x-request-id"]

    lines = wait_request_lines(traced, request_id, 2)
    [span] = otlp.spans("POST /links", trace_id=ids.trace_id)

    assert sorted(line["event.dataset"] for line in lines) == ["svc.access", "svc.app"]
    [app_line] = [line for line in lines if line["event.dataset"] == "svc.app"]
    assert app_line["message"] == "link created"
    assert app_line["link.slug"] == "log-ids"
    for line in lines:
        assert (line["trace.id"], line["span.id"]) == (ids.trace_id, span.span_id), line
        assert HEX16.fullmatch(line["span.id"])
