"""Helpers for the service tests: an in-process app client, problem+json checks, the log line schema."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from litestar.testing import TestClient
from litestar.types import ASGIApp

from svc.config import Config
from svc.logs import ConsoleFormatter, EcsJsonFormatter
from svc.service import create_app
from tests.support.log_contract import ACCESS_FIELDS, ALWAYS_FIELDS, ERROR_FIELDS, all_fields

__all__ = [
    "ACCESS_FIELDS",
    "ALWAYS_FIELDS",
    "DATASETS",
    "LEVELS",
    "PROBLEM_JSON",
    "TIMESTAMP",
    "app_client",
    "assert_problem",
    "capture_logs",
    "field_type_errors",
]

PROBLEM_JSON = "application/problem+json"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
LEVELS = frozenset({"debug", "info", "warning", "error", "critical"})
DATASETS = frozenset({"svc.access", "svc.app", "svc.server"})

# The contract's log schema (tests/support/log_contract.py); ints are checked as "int and not bool".
# App lines written while a request is served carry its id too (http.request.id, an access field).
KNOWN_FIELDS: dict[str, type] = all_fields()


def field_type_errors(line: dict[str, Any]) -> list[str]:
    """Everything wrong with one parsed log line against the contract (empty when it conforms)."""
    errors = [f"missing {name}" for name in ALWAYS_FIELDS if name not in line]
    for name, value in line.items():
        expected = KNOWN_FIELDS.get(name)
        if expected is None:
            errors.append(f"unknown field {name}")
        elif not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            errors.append(f"{name}={value!r} is not {expected.__name__}")
    if isinstance(line.get("@timestamp"), str) and not TIMESTAMP.fullmatch(line["@timestamp"]):
        errors.append(f"@timestamp {line['@timestamp']!r} is not RFC 3339 UTC with ms")
    if line.get("log.level") not in LEVELS:
        errors.append(f"log.level {line.get('log.level')!r}")
    if line.get("event.dataset") not in DATASETS:
        errors.append(f"event.dataset {line.get('event.dataset')!r}")
    if "trace.id" in line and not re.fullmatch(r"[0-9a-f]{32}", str(line["trace.id"])):
        errors.append(f"trace.id {line['trace.id']!r}")
    if "span.id" in line and not re.fullmatch(r"[0-9a-f]{16}", str(line["span.id"])):
        errors.append(f"span.id {line['span.id']!r}")
    if line.get("event.dataset") == "svc.access":
        errors += [f"access line missing {name}" for name in ACCESS_FIELDS if name not in line]
    if any(name in line for name in ERROR_FIELDS) and "error.stack_trace" in line:
        errors += [f"error line missing {name}" for name in ERROR_FIELDS if name not in line]
    return errors


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert response is an RFC 9457 problem with this status; return its body."""
    assert response.status_code == status, f"{response.status_code} {response.text}"
    assert response.headers["content-type"] == PROBLEM_JSON, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status, body
    assert isinstance(body["title"], str), body
    assert body["title"], body
    return body


@contextmanager
def app_client(config: Config, app: ASGIApp | None = None, *, lifespan: bool = True) -> Iterator[TestClient[ASGIApp]]:
    """Litestar's TestClient over create_app(config) (or app); lifespan=False leaves the app unstarted."""
    client: TestClient[ASGIApp] = TestClient(app or create_app(config), raise_server_exceptions=False)
    if not lifespan:
        # Not entered: entering the TestClient is what runs the app's startup hooks (and it holds nothing to close).
        yield client
        return
    with client:
        yield client


@contextmanager
def capture_logs(console: bool = False) -> Iterator[io.StringIO]:
    """What the service's formatter writes for every record logged meanwhile (at INFO and up)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    service = {"service.name": "svc", "service.version": "test", "service.environment": "test"}
    handler.setFormatter(ConsoleFormatter(service) if console else EcsJsonFormatter(service))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
