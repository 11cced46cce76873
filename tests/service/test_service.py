"""Service on its own: each lifecycle step, and every way out of run() closing the listeners and flushing telemetry."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvloop
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.polling import wait_for
from harness.service import log_lines
from svc.buildinfo import read_build_info
from svc.cli import EXIT_FAILURE, EXIT_OK
from svc.config import Config
from svc.health import Phase
from svc.server import run_server
from svc.service import Service, bare_app
from svc.telemetry import Telemetry
from tests.service.support import app_client, capture_logs

# Long enough that a queued span reaches the exporter only through the flush at exit, never on the timer.
NEVER_MS = 600_000


@dataclass
class Recorded:
    """A Service whose telemetry keeps its finished spans in memory, with one span queued and not yet exported."""

    service: Service
    exporter: InMemorySpanExporter
    stop: threading.Event = field(default_factory=threading.Event)

    def flushed(self) -> list[str]:
        """Names of the spans the flush handed to the exporter."""
        return [span.name for span in self.exporter.get_finished_spans()]


def _config(tmp_path: Path, **changes: Any) -> Config:
    base = Config(
        host="127.0.0.1",
        port=0,
        admin_host="127.0.0.1",
        admin_port=0,
        database_path=str(tmp_path / "svc.db"),
        shutdown_timeout=5,
    )
    return base.replace(**changes)


def _recorded(config: Config) -> Recorded:
    exporter = InMemorySpanExporter()
    processor = BatchSpanProcessor(exporter, schedule_delay_millis=NEVER_MS)
    telemetry = Telemetry.from_config(config, read_build_info(), span_processors=[processor])
    # Made before the service starts: it stays queued in the batch processor until something flushes it.
    telemetry.tracer.start_span("queued before start").end()
    return Recorded(Service(config, telemetry=telemetry), exporter)


def _run(recorded: Recorded) -> int:
    return run_server(recorded.service.run, recorded.stop)


@contextmanager
def _running(recorded: Recorded) -> Iterator[list[int]]:
    """run() in a thread; yields once /readyz answers 200; the exit code lands in the list once it returns."""
    code: list[int] = []
    thread = threading.Thread(target=lambda: code.append(_run(recorded)), name="service", daemon=True)
    thread.start()
    try:
        wait_for(lambda: _ready(recorded.service) or not thread.is_alive(), 10, what="the service to be ready")
        assert thread.is_alive(), f"run() returned {code} before it was ready"
        yield code
    finally:
        recorded.stop.set()
        thread.join(15)
        assert not thread.is_alive(), "run() did not return"


def _ready(service: Service) -> bool:
    if service.public.address is None or not service.admin.server.started:
        return False
    return httpx.get(f"{_url(service)}/readyz", timeout=1).status_code == 200


def _url(service: Service) -> str:
    assert service.public.address is not None
    address, port = service.public.address
    return f"http://{address}:{port}"


def _refused(host: str, port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) != 0


def _on_loop(steps: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(steps())


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else already listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield taken.getsockname()[1]


def _run_unstartable(recorded: Recorded) -> str:
    """run() a service that cannot start: asserts exit 1 and the queued span flushed; returns what it logged."""
    with capture_logs() as logs:
        assert _run(recorded) == EXIT_FAILURE
    assert recorded.flushed() == ["queued before start"]
    assert "telemetry flushed in" in logs.getvalue()
    return logs.getvalue()


def test_a_taken_public_port_exits_1_and_still_flushes_telemetry(tmp_path: Path, taken_port: int) -> None:
    logged = _run_unstartable(_recorded(_config(tmp_path, port=taken_port)))
    assert f"cannot listen on 127.0.0.1:{taken_port}" in logged


def test_a_taken_admin_port_exits_1_closes_the_public_socket_and_still_flushes(tmp_path: Path, taken_port: int) -> None:
    recorded = _recorded(_config(tmp_path, admin_port=taken_port))
    assert f"cannot listen on 127.0.0.1:{taken_port}" in _run_unstartable(recorded)
    public = recorded.service.public.sock
    assert public is not None
    assert public.fileno() == -1, "the public socket bound before the admin bind failed must be closed"


def test_a_failed_startup_exits_1_and_still_flushes_telemetry(tmp_path: Path) -> None:
    recorded = _recorded(_config(tmp_path, database_path=str(tmp_path)))  # a directory: SQLite cannot open it
    assert "startup failed" in _run_unstartable(recorded)


def test_a_stop_request_drains_closes_both_listeners_and_flushes_telemetry(tmp_path: Path) -> None:
    recorded = _recorded(_config(tmp_path))
    service = recorded.service
    with capture_logs() as logs, _running(recorded) as code:
        public, admin = service.public.address, service.admin.address
        assert public is not None
        assert admin is not None
        assert recorded.flushed() == [], "nothing is flushed while serving"
    assert code == [EXIT_OK]
    assert service.parts.lifecycle.phase is Phase.DRAINING
    assert _refused(*public)
    assert _refused(*admin)
    assert recorded.flushed() == ["queued before start"]
    assert log_lines(logs.getvalue())[-1]["message"].startswith("stopped: both listeners closed, exit code 0 after ")


def test_a_server_that_exits_by_itself_ends_run_through_the_same_stop_and_flush(tmp_path: Path) -> None:
    recorded = _recorded(_config(tmp_path, shutdown_drain=30.0))
    service = recorded.service
    with capture_logs() as logs, _running(recorded) as code:
        service.admin.server.should_exit = True  # the flag uvicorn's own signal handler sets: finish and return
        wait_for(lambda: code, 10, what="run() to return after the admin server exited")
    assert code == [EXIT_OK]
    assert service.public.address is not None
    assert _refused(*service.public.address)
    assert recorded.flushed() == ["queued before start"]
    assert "draining for" not in logs.getvalue(), "the drain wait is for a stop request, not for a dead server"


def test_drain_fails_readiness_while_the_public_listener_still_serves(tmp_path: Path) -> None:
    service = Service(_config(tmp_path, otel_disabled=True))
    statuses: dict[str, int] = {}

    async def steps() -> None:
        assert await service.start()
        async with httpx.AsyncClient(base_url=_url(service)) as client:
            statuses["ready before"] = (await client.get("/readyz")).status_code
            await service.drain(requested=False)
            statuses["ready draining"] = (await client.get("/readyz")).status_code
            statuses["live draining"] = (await client.get("/healthz")).status_code
        await service.stop()
        await service.flush()

    _on_loop(steps)
    assert statuses == {"ready before": 200, "ready draining": 503, "live draining": 200}


def test_stop_lets_the_in_flight_request_finish_before_the_server_returns(tmp_path: Path) -> None:
    service = Service(_config(tmp_path, otel_disabled=True))
    outcome: dict[str, Any] = {}

    async def steps() -> None:
        assert await service.start()
        edge = service.public.edge
        async with httpx.AsyncClient(base_url=_url(service), timeout=10) as client:
            slow = asyncio.create_task(client.get("/slow", params={"ms": 500}))
            # In flight: connected, its head read (no connection is still reading one).
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while not (edge.open and not edge.heads):
                assert loop.time() < deadline, "the slow request never got in flight"
                await asyncio.sleep(0.005)
            outcome["code"] = await service.stop()
            outcome["done when stop returned"] = slow.done()
            outcome["status"] = (await slow).status_code
        await service.flush()

    _on_loop(steps)
    assert outcome == {"code": EXIT_OK, "done when stop returned": True, "status": 200}


def test_the_bare_app_serves_the_routes_without_svc_middleware(tmp_path: Path) -> None:
    config = _config(tmp_path, otel_disabled=True)
    with app_client(config, Service(config).app) as full, app_client(config, Service(config, app=bare_app).app) as bare:
        assert "x-request-id" in full.get("/healthz").headers
        response = bare.get("/healthz")
    assert response.status_code == 200
    assert "x-request-id" not in response.headers
