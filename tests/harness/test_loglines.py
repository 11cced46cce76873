"""harness.loglines: which svc lines count as warnings, the drop summaries by signal, and which counts are too many."""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.loglines import WarningLines, is_warning, warning_lines


def _line(level: str, logger: str, message: str = "m", dataset: str = "svc.app") -> dict[str, Any]:
    return {"log.level": level, "log.logger": logger, "message": message, "event.dataset": dataset}


def test_warning_error_and_critical_lines_count_info_does_not() -> None:
    levels = ["debug", "info", "warning", "error", "critical"]
    assert [is_warning(_line(level, "svc.store")) for level in levels] == [False, False, True, True, True]


def test_access_lines_never_count_whatever_their_level() -> None:
    assert not is_warning(_line("error", "svc.access", dataset="svc.access"))


def test_the_error_line_of_an_injected_fault_does_not_count() -> None:
    assert not is_warning(_line("error", "svc.app", "unhandled InjectedFault: asked for by GET /fault"))
    assert is_warning(_line("error", "svc.app", "unhandled ValueError: a real bug"))


def test_lines_are_counted_by_logger_and_drop_summaries_by_signal() -> None:
    found = warning_lines(
        [
            _line("warning", "svc.telemetry", "telemetry dropped: 5 spans (5 export_failed)"),
            _line("warning", "svc.telemetry", "telemetry dropped: 2 errors (2 queue_full)"),
            _line("warning", "svc.telemetry", "telemetry dropped:"),  # no count: a line, but no signal
            _line("error", "opentelemetry.exporter", "Failed to export"),
            _line("info", "svc.server", "listening"),
        ]
    )
    assert found.by_logger == Counter({"svc.telemetry": 3, "opentelemetry.exporter": 1})
    assert found.drops == Counter({"spans": 1, "errors": 1})


def test_over_names_drop_lines_and_library_loggers_past_the_allowance() -> None:
    lines = WarningLines(
        by_logger=Counter({"sentry_sdk.errors": 3, "grpc._channel": 2, "svc.store": 9}),
        drops=Counter({"spans": 3, "errors": 2}),
    )
    assert lines.over(2, "60 s") == [
        "3 drop lines for spans in 60 s (at most 2)",
        "3 lines from sentry_sdk.errors in 60 s (at most 2)",
    ]
