"""SIGTERM under half-capacity load (the fast variant of scripts/shutdown-under-load): no accepted request
fails, exit 0 within SHUTDOWN_TIMEOUT, and every completed request's span is exported."""

from __future__ import annotations

from pathlib import Path

from reliability.shutdown import shutdown_under_load

SHUTDOWN_TIMEOUT = 5.0


def test_sigterm_under_load_fails_no_accepted_request_and_exports_every_completed_span(tmp_path: Path) -> None:
    report = shutdown_under_load(
        tmp_path, calibrate_s=1.5, sigterm_after_s=2.0, shutdown_timeout_s=SHUTDOWN_TIMEOUT, slow_ms=(50, 400)
    )
    assert report.problems() == [], report
    assert report.exit_code == 0
    assert report.exit_seconds is not None
    assert report.exit_seconds <= SHUTDOWN_TIMEOUT
    # The run meant something: real load, requests in flight when the signal landed, all of them finished.
    assert report.load["achieved_rps"] >= 0.3 * report.capacity_rps, report.load
    assert report.in_flight_at_sigterm > 0, report
    assert report.accepted > 500, report
    assert report.traced_completed > 0
    # Nothing was lost on the client side except connections the closed listener refused or never read.
    assert set(report.load["errors"]) <= {"refused", "no-response"}, report.load
