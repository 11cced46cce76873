"""End to end: a forced 500 reaches the Sentry receiver carrying the trace id of its Jaeger trace and its log lines."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.service import service_process
from tests.peers.e2e import trace_id_of, traced_env
from tests.peers.jaeger import JaegerPeer
from tests.peers.process import wait_until
from tests.peers.sentry import RunningSink

pytestmark = pytest.mark.slow


def test_forced_500_is_one_trace_id_in_sentry_jaeger_and_the_logs(
    jaeger: JaegerPeer, sentry_receiver: RunningSink, tmp_path: Path
) -> None:
    env = traced_env(tmp_path, jaeger, FAULTS_ENABLED="true", SENTRY_DSN=sentry_receiver.dsn)
    with service_process(env) as svc:
        response = httpx.get(f"{svc.url}/fault", params={"tag": "e2e-500"}, timeout=5)
        assert response.status_code == httpx.codes.INTERNAL_SERVER_ERROR
        assert response.headers["content-type"].startswith("application/problem+json")
        trace_id = trace_id_of(response)

        [event] = wait_until(lambda: sentry_receiver.events(trace_id) or None, 15, f"Sentry event of trace {trace_id}")
        trace = jaeger.wait_for_trace(trace_id)
        logs = svc.logs()

    assert event.type == "event"
    assert event.title == "InjectedFaultError: injected fault e2e-500"
    assert event.level == "error"

    root = trace.span("GET /fault")
    assert root.status_code == 2  # OTLP STATUS_CODE_ERROR
    assert event.payload["contexts"]["trace"]["span_id"] in {span.span_id for span in trace.spans}

    traced_lines = [line for line in logs if line.get("trace.id") == trace_id]
    access = [line for line in traced_lines if line["event.dataset"] == "svc.access"]
    assert [line["http.response.status_code"] for line in access] == [500]
    assert access[0]["http.route"] == "/fault"
    errors = [line for line in traced_lines if line.get("error.type")]
    assert errors, f"no error log line with trace.id {trace_id}: {traced_lines}"
    assert errors[0]["error.type"] == "InjectedFaultError"
    assert "injected fault e2e-500" in errors[0]["error.message"]
