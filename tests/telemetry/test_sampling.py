"""Tracing switched off or sampled away: nothing is exported, and requests, logs and metrics carry on."""

from __future__ import annotations

import httpx

from harness.otlp_receivers import OtlpGrpcReceiver
from tests.telemetry.conftest import StartService
from tests.telemetry.support import request_lines, scrape, trace_response


def _serve_a_few(client: httpx.Client, url: str) -> list[httpx.Response]:
    responses = [
        client.post(f"{url}/links", json={"url": "https://example.com/s", "slug": "sampled"}),
        client.get(f"{url}/links/sampled"),
        client.get(f"{url}/r/sampled"),
        client.get(f"{url}/links/missing"),
    ]
    assert [r.status_code for r in responses] == [201, 200, 307, 404]
    return responses


def test_sdk_disabled_exports_no_spans_and_requests_still_succeed(
    start_service: StartService, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    with start_service(OTEL_SDK_DISABLED="true", OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint) as svc:
        responses = _serve_a_few(client, svc.url)
    # Stopping flushes every span the service made: anything exported has arrived by now.

    assert otlp.exports() == []
    for response in responses:
        # With tracing off there is no trace to name; an all-zero traceresponse would be invalid W3C.
        assert "traceresponse" not in response.headers
        [access] = [
            line
            for line in request_lines(svc.logs(), response.headers["x-request-id"])
            if line["event.dataset"] == "svc.access"
        ]
        assert "trace.id" not in access
        assert "span.id" not in access


def test_ratio_zero_sampler_exports_nothing_while_logs_keep_valid_trace_ids(
    start_service: StartService, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    with start_service(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, **env) as svc:
        responses = _serve_a_few(client, svc.url)

    assert otlp.all_spans() == []
    for response in responses:
        ids = trace_response(response)
        assert not ids.sampled
        [access] = [
            line
            for line in request_lines(svc.logs(), response.headers["x-request-id"])
            if line["event.dataset"] == "svc.access"
        ]
        assert (access["trace.id"], access["span.id"]) == (ids.trace_id, ids.span_id)


def test_unsampled_requests_leave_no_exemplar_pointing_at_a_missing_trace(
    start_service: StartService, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0"}
    with start_service(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, **env) as svc:
        _serve_a_few(client, svc.url)
        result = scrape(svc.admin_url, openmetrics=True)

    assert result.value("http_server_requests_total", method="GET", route="/links/{slug}", status_code="200") == 1
    assert [s for s in result.samples if s.exemplar is not None] == []
