"""Faulty telemetry backends (the fast variant of scripts/backend-faults): with the OTLP collector and Sentry
refusing connections, accepting and never answering, or answering 500/503, no request fails, the queues stay
bounded, every drop is counted in svc_telemetry_dropped_total and logged at most once per interval, and SIGTERM
still exits 0 in time. p99 against a healthy backend is measured by the script, not asserted here."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends import Mode
from reliability.backend_faults import Protocol, fault_case

# Both backends fail the same way at once; the two OTLP protocols share the four modes between them
# (the script runs every protocol x mode, and each backend alone).
CASES: list[tuple[Protocol, Mode]] = [
    ("grpc", "refuse"),
    ("http/protobuf", "hang"),
    ("grpc", "503"),
    ("http/protobuf", "500"),
]


@pytest.mark.parametrize(("protocol", "mode"), CASES, ids=[f"{p}-{m}" for p, m in CASES])
def test_a_failing_backend_fails_no_request_and_every_drop_is_counted(
    tmp_path: Path, protocol: Protocol, mode: Mode
) -> None:
    report = fault_case(tmp_path, otlp_protocol=protocol, otlp_mode=mode, sentry_mode=mode, rate=400, duration_s=3.0)
    assert report.problems() == [], report
    assert report.load["failed"] == 0
    assert report.injected_faults > 150  # enough error events that a failing Sentry must lose some
    assert report.dropped["spans"] > 0
    assert report.dropped["errors"] > 0
    # One summary line per signal, and at most one line from the exporter itself, however many batches failed.
    assert report.drop_summary_lines == {"spans": 1, "errors": 1}, report.log_lines
    assert all(count <= 1 for logger, count in report.log_lines.items() if logger != "svc.telemetry"), report.log_lines
