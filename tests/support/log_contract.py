"""The log contract: every field svc's JSON lines may carry, with its JSON type, and the one check of a line."""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "ACCESS_FIELDS",
    "ALWAYS_FIELDS",
    "APP_FIELDS",
    "ERROR_FIELDS",
    "LISTENER_FIELDS",
    "TRACE_FIELDS",
    "all_fields",
    "contract_errors",
]

ALWAYS_FIELDS: dict[str, type] = {
    "@timestamp": str,
    "log.level": str,
    "message": str,
    "log.logger": str,
    "service.name": str,
    "service.version": str,
    "service.environment": str,
    "event.dataset": str,
}
# On every line written while a traced request is served.
TRACE_FIELDS: dict[str, type] = {"trace.id": str, "span.id": str}
ACCESS_FIELDS: dict[str, type] = {
    "http.request.method": str,
    "http.route": str,
    "url.path": str,
    "http.response.status_code": int,
    "http.response.body.bytes": int,
    "event.duration": int,
    "client.address": str,
    "user_agent.original": str,
    "http.request.id": str,
    "http.version": str,
}
ERROR_FIELDS: dict[str, type] = {"error.type": str, "error.message": str, "error.stack_trace": str}
APP_FIELDS: dict[str, type] = {"link.slug": str}
# The two startup lines that announce each listener (harness/service.py finds the ports through them).
LISTENER_FIELDS: dict[str, type] = {"server.address": str, "server.port": int, "labels.listener": str}


def all_fields() -> dict[str, type]:
    """Every field any svc line may carry."""
    return {**ALWAYS_FIELDS, **TRACE_FIELDS, **ACCESS_FIELDS, **ERROR_FIELDS, **APP_FIELDS, **LISTENER_FIELDS}


DATASETS = ("svc.access", "svc.app", "svc.server")
LEVELS = ("debug", "info", "warning", "error", "critical")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Written by svc on app lines but not a group of their own: the request id on lines written while a request is
# served, each listener's address on the two "public/admin listener on" lines (svc.main, an app line), and how long
# the exit's telemetry flush took on its "telemetry flushed in" line.
APP_EXTRA_FIELDS: dict[str, type] = {"http.request.id": str, "event.duration": int, **LISTENER_FIELDS}


def _allowed(dataset: object) -> dict[str, type]:
    allowed = {**ALWAYS_FIELDS, **TRACE_FIELDS, **ERROR_FIELDS}
    if dataset == "svc.access":
        allowed |= ACCESS_FIELDS
    elif dataset == "svc.app":
        allowed |= APP_FIELDS | APP_EXTRA_FIELDS
    return allowed


def contract_errors(doc: dict[str, Any]) -> list[str]:
    """Everything wrong with one parsed log line against the contract (empty when it conforms)."""
    dataset = doc.get("event.dataset")
    allowed = _allowed(dataset)
    errors = [f"missing {name}" for name in ALWAYS_FIELDS if name not in doc]
    for name, value in doc.items():
        expected = allowed.get(name)
        if expected is None:
            errors.append(f"field {name} is outside the contract for {dataset}")
        elif type(value) is not expected:  # exact: a bool is not an int, an int is not a str
            errors.append(f"{name}={value!r} is not {expected.__name__}")
    if dataset not in DATASETS:
        errors.append(f"event.dataset {dataset!r}")
    if doc.get("log.level") not in LEVELS:
        errors.append(f"log.level {doc.get('log.level')!r}")
    if isinstance(doc.get("@timestamp"), str) and not TIMESTAMP.fullmatch(doc["@timestamp"]):
        errors.append(f"@timestamp {doc['@timestamp']!r} is not RFC 3339 UTC with ms")
    if ("trace.id" in doc) != ("span.id" in doc):
        errors.append("trace.id and span.id come together")
    if "trace.id" in doc and not re.fullmatch(r"[0-9a-f]{32}", str(doc["trace.id"])):
        errors.append(f"trace.id {doc['trace.id']!r}")
    if "span.id" in doc and not re.fullmatch(r"[0-9a-f]{16}", str(doc["span.id"])):
        errors.append(f"span.id {doc['span.id']!r}")
    if dataset == "svc.access":
        errors += [f"access line missing {name}" for name in ACCESS_FIELDS if name not in doc]
    if "error.stack_trace" in doc:
        errors += [f"error line missing {name}" for name in ERROR_FIELDS if name not in doc]
    return errors
