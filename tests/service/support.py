"""Support for the service tests: an in-process app client, problem+json checks, captured log lines."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from litestar.testing import TestClient
from litestar.types import ASGIApp

from svc.config import Config
from svc.logs import ConsoleFormatter, EcsJsonFormatter
from svc.service import create_app
from tests.support.log_contract import ACCESS_FIELDS, ALWAYS_FIELDS

__all__ = [
    "ACCESS_FIELDS",
    "ALWAYS_FIELDS",
    "PROBLEM_JSON",
    "app_client",
    "assert_problem",
    "capture_logs",
]

PROBLEM_JSON = "application/problem+json"


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
