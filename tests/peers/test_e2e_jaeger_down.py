"""End to end: with Jaeger gone mid-run, requests keep succeeding and the service still exits within its timeout."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from harness.service import service_process
from tests.peers.e2e import trace_id_of, traced_env
from tests.peers.jaeger import JaegerPeer

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 3


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_requests_succeed_and_shutdown_is_clean_after_jaeger_stops(
    jaeger: JaegerPeer, tmp_path: Path, protocol: str
) -> None:
    env = traced_env(tmp_path, jaeger, protocol, SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT))
    with service_process(env) as svc:
        before = httpx.get(f"{svc.url}/links", timeout=5)
        jaeger.wait_for_trace(trace_id_of(before))  # export worked while Jaeger was up
        assert jaeger.stop() == 0

        for index in range(20):
            started = time.monotonic()
            response = httpx.get(f"{svc.url}/links", timeout=5)
            assert response.status_code == httpx.codes.OK, f"request {index} after Jaeger stopped: {response.text}"
            assert time.monotonic() - started < 1.0, "a dead exporter must never sit on the request path"
        assert httpx.get(f"{svc.url}/readyz", timeout=5).status_code == httpx.codes.OK

        started = time.monotonic()
        svc.signal(signal.SIGTERM)
        exit_code = svc.wait(timeout=SHUTDOWN_TIMEOUT + 10)
        elapsed = time.monotonic() - started

    assert exit_code == 0, svc.text()[-3000:]
    # SHUTDOWN_TIMEOUT bounds the drain and the final flush; one second of slack for interpreter teardown.
    assert elapsed < SHUTDOWN_TIMEOUT + 1, f"exit took {elapsed:.1f}s with the collector down"
