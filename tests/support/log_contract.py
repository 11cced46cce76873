"""The log contract: every field svc's JSON lines may carry, grouped by when, with its JSON type."""

from __future__ import annotations

__all__ = [
    "ACCESS_FIELDS",
    "ALWAYS_FIELDS",
    "APP_FIELDS",
    "ERROR_FIELDS",
    "LISTENER_FIELDS",
    "TRACE_FIELDS",
    "all_fields",
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
