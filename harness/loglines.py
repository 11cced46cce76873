"""Sorts a run's svc log lines: warning-or-worse lines by logger, drop summaries by signal, and which are too many."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LIBRARY_LOGGERS", "WARNING_LEVELS", "WarningLines", "is_warning", "warning_lines"]

WARNING_LEVELS = frozenset({"warning", "error", "critical"})
# Loggers of the libraries under svc's telemetry: a line per failed export from them would flood a log pipeline.
LIBRARY_LOGGERS = ("opentelemetry", "sentry_sdk", "grpc", "urllib3")
# DropCounter's summary line: "telemetry dropped: 5 spans (5 export_failed)" (svc/telemetry.py).
_DROP_PREFIX = "telemetry dropped:"


def is_warning(doc: Mapping[str, Any]) -> bool:
    """A warning-or-worse line that is not an access line, nor the error line of a fault injected on purpose
    (GET /fault: one per request, asked for)."""
    if doc.get("event.dataset") == "svc.access" or doc.get("log.level") not in WARNING_LEVELS:
        return False
    return not (
        doc.get("log.logger") == "svc.app" and str(doc.get("message", "")).startswith("unhandled InjectedFault")
    )


@dataclass
class WarningLines:
    """Warning-or-worse lines counted by logger, and DropCounter's summary lines counted by signal."""

    by_logger: Counter[str] = field(default_factory=Counter)
    drops: Counter[str] = field(default_factory=Counter)

    def over(self, allowed: int, during: str) -> list[str]:
        """Every signal with more drop lines, and every library logger with more lines, than allowed (say once a
        minute over the run: `during` says how long it was)."""
        found = [
            f"{count} drop lines for {name} in {during} (at most {allowed})"
            for name, count in self.drops.items()
            if count > allowed
        ]
        found += [
            f"{count} lines from {logger} in {during} (at most {allowed})"
            for logger, count in self.by_logger.items()
            if logger.startswith(LIBRARY_LOGGERS) and count > allowed
        ]
        return found


def warning_lines(logs: Iterable[Mapping[str, Any]]) -> WarningLines:
    """The warning-or-worse lines of logs (parsed JSON lines), sorted as WarningLines counts them."""
    found = WarningLines()
    for doc in logs:
        if not is_warning(doc):
            continue
        found.by_logger[str(doc.get("log.logger"))] += 1
        message = str(doc.get("message", ""))
        if message.startswith(_DROP_PREFIX) and len(words := message.removeprefix(_DROP_PREFIX).split()) > 1:
            found.drops[words[1]] += 1
    return found
