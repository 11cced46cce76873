"""DropCounter (svc/telemetry.py) alone: every loss in svc_telemetry_dropped_total, one summary line per interval."""

from __future__ import annotations

import logging

import pytest

from svc.buildinfo import BuildInfo
from svc.metrics import Metrics
from svc.telemetry import DropCounter

BUILD = BuildInfo(version="1.0", commit=None, commit_time=None, dirty=None)


class _Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> _Clock:
    return _Clock()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(BUILD)


def _dropped(metrics: Metrics, signal: str, reason: str) -> float | None:
    return metrics.registry.get_sample_value("svc_telemetry_dropped_total", {"signal": signal, "reason": reason})


def _summaries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "svc.telemetry"]


def test_every_drop_is_counted_by_signal_and_reason(metrics: Metrics, clock: _Clock) -> None:
    spans, errors = DropCounter(metrics, "spans", clock=clock), DropCounter(metrics, "errors", clock=clock)
    spans(3, "export_failed")
    spans(1, "queue_full")
    spans(2, "export_failed")
    errors(4, "network_error")
    assert _dropped(metrics, "spans", "export_failed") == 5
    assert _dropped(metrics, "spans", "queue_full") == 1
    assert _dropped(metrics, "errors", "network_error") == 4


def test_the_first_drop_gets_a_summary_line_at_once(
    metrics: Metrics, clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "svc.telemetry")
    DropCounter(metrics, "spans", clock=clock)(3, "export_failed")
    assert _summaries(caplog) == ["telemetry dropped: 3 spans (3 export_failed)"]


def test_drops_within_the_interval_get_no_line_and_the_next_line_sums_them_by_reason(
    metrics: Metrics, clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "svc.telemetry")
    drops = DropCounter(metrics, "spans", interval=60.0, clock=clock)
    drops(1, "queue_full")
    clock.now += 30
    drops(4, "export_failed")
    drops(2, "queue_full")
    assert len(_summaries(caplog)) == 1
    clock.now += 30
    drops(1, "rejected")
    assert _summaries(caplog)[1:] == ["telemetry dropped: 7 spans (4 export_failed, 2 queue_full, 1 rejected)"]


def test_each_signal_has_its_own_interval(metrics: Metrics, clock: _Clock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "svc.telemetry")
    spans, errors = DropCounter(metrics, "spans", clock=clock), DropCounter(metrics, "errors", clock=clock)
    spans(1, "queue_full")
    errors(2, "network_error")
    assert _summaries(caplog) == [
        "telemetry dropped: 1 spans (1 queue_full)",
        "telemetry dropped: 2 errors (2 network_error)",
    ]
