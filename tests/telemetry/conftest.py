"""Fixtures: protocol-exact receivers on free loopback ports, and the real service wired to them."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from harness.http_backend import HttpBackend, Reply
from harness.otlp_receivers import OtlpGrpcReceiver
from harness.sentry_ingest import SentryReceiver
from harness.service import ServiceThread, base_env, service_thread

StartService = Callable[..., AbstractContextManager[ServiceThread]]


@pytest.fixture
def otlp() -> Iterator[OtlpGrpcReceiver]:
    """An OTLP/gRPC receiver that accepts everything."""
    with OtlpGrpcReceiver() as receiver:
        yield receiver


@pytest.fixture
def replies() -> deque[Reply]:
    """The answers `endpoint` gives, in turn; once they run out, a 200 with an empty body."""
    return deque()


@pytest.fixture
def endpoint(replies: deque[Reply]) -> Iterator[HttpBackend]:
    """An HTTP/1.1 fake backend answering each request with the next of `replies` (for one exporter at a time)."""
    with HttpBackend(lambda _request: replies.popleft() if replies else Reply(200, b"")) as backend:
        yield backend


@pytest.fixture
def sentry() -> Iterator[SentryReceiver]:
    """The Sentry envelope sink, expecting its own DSN key."""
    with SentryReceiver() as receiver:
        yield receiver


@pytest.fixture
def start_service(tmp_path: Path) -> StartService:
    """start_service(**env) -> context manager running svc in a thread with base_env plus env."""

    def start(**env: str) -> AbstractContextManager[ServiceThread]:
        return service_thread(base_env(tmp_path, **env))

    return start


@pytest.fixture
def traced(start_service: StartService, otlp: OtlpGrpcReceiver, sentry: SentryReceiver) -> Iterator[ServiceThread]:
    """svc exporting spans to `otlp` over gRPC and errors to `sentry`, with GET /fault enabled."""
    with start_service(OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, SENTRY_DSN=sentry.dsn, FAULTS_ENABLED="true") as svc:
        yield svc


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """One keep-alive HTTP client per test."""
    with httpx.Client(timeout=10) as http:
        yield http
