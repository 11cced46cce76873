"""The real process (`python -m svc`) on port 0: signals, draining, in-flight requests, exit codes, durability."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from harness.checkout import REPO
from harness.polling import wait_for
from harness.service import ServiceProcess, base_env, log_lines, service_process
from tests.service.support import assert_problem
from tests.support.log_contract import contract_errors

SLOW_MS = 1500


def _active_get_requests(svc: ServiceProcess) -> float:
    text = httpx.get(f"{svc.admin_url}/metrics", timeout=2).text
    match = re.search(r'^http_server_active_requests\{method="GET"\} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/healthz", timeout=1)
    except httpx.ConnectError:
        return True
    return False


class _InFlight:
    """A GET /slow started in a thread; waits until the service counts it as in flight."""

    def __init__(self, svc: ServiceProcess, ms: int = SLOW_MS) -> None:
        self.response: httpx.Response | None = None
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._get, args=(f"{svc.url}/slow?ms={ms}",), daemon=True)
        self._thread.start()
        wait_for(lambda: _active_get_requests(svc) >= 1, 5, what="the slow request to be in flight")

    def _get(self, url: str) -> None:
        try:
            self.response = httpx.get(url, timeout=15)
        except Exception as exc:
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self, timeout: float) -> httpx.Response:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the in-flight request never finished"
        assert self.response is not None, f"the in-flight request failed: {self.error!r}"
        return self.response


@pytest.mark.slow
def test_sigterm_lets_the_in_flight_request_finish_refuses_new_connections_and_exits_0(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path)) as svc:
        slow = _InFlight(svc)
        svc.signal(signal.SIGTERM)
        wait_for(lambda: _refused(svc.url), 5, what="the listener to close")
        assert slow.running, "new connections must be refused while the old request is still being served"
        response = slow.result(10)
        assert response.status_code == 200
        assert response.json() == {"slept_ms": SLOW_MS}
        assert svc.wait(10) == 0
    messages = [line["message"] for line in svc.logs()]
    assert "SIGTERM received: draining" in messages
    assert messages[-1].startswith("stopped: ")


@pytest.mark.slow
def test_every_stdout_line_of_the_process_is_json_through_a_signal_shutdown(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path)) as svc:
        httpx.post(f"{svc.url}/links", json={"url": "https://example.com/"})
        svc.signal(signal.SIGTERM)
        assert svc.wait(10) == 0
    lines = svc.logs()  # raises on any line that is not JSON (stderr is merged in)
    assert [(line, errors) for line in lines if (errors := contract_errors(line))] == []
    assert lines[-1]["message"].startswith("stopped: ")


@pytest.mark.slow
def test_sigint_drains_like_sigterm_and_exits_0(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path)) as svc:
        svc.signal(signal.SIGINT)
        assert svc.wait(10) == 0
    assert svc.logs()[-1]["message"].startswith("stopped: ")


@pytest.mark.slow
def test_readyz_answers_503_during_the_drain_while_the_listener_still_accepts(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path, SHUTDOWN_DRAIN="2")) as svc:
        svc.signal(signal.SIGTERM)

        def not_ready() -> httpx.Response | None:
            response = httpx.get(f"{svc.url}/readyz", timeout=1)
            return response if response.status_code == 503 else None

        draining = wait_for(not_ready, 5, what="/readyz 503")
        body = assert_problem(draining, 503)
        assert "draining" in body["detail"]
        assert httpx.get(f"{svc.url}/healthz", timeout=1).status_code == 200, "liveness holds while draining"
        assert httpx.get(f"{svc.url}/links", timeout=1).status_code == 200, "traffic is still served while draining"
        wait_for(lambda: _refused(svc.url), 5, what="the listener to close after the drain")
        assert svc.wait(10) == 0
    messages = [line["message"] for line in svc.logs()]
    assert "draining for 2.0 s before closing listeners" in messages


@pytest.mark.slow
def test_second_sigterm_exits_at_once_with_a_non_zero_code(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path, SHUTDOWN_DRAIN="30")) as svc:
        svc.signal(signal.SIGTERM)
        wait_for(
            lambda: any(line["message"] == "SIGTERM received: draining" for line in svc.logs()), 5, what="draining"
        )
        svc.signal(signal.SIGTERM)
        code = svc.wait(5)  # far less than the 30 s drain
    assert code == 128 + signal.SIGTERM
    assert any(line["message"] == "second SIGTERM: exiting now" for line in svc.logs())


@pytest.mark.slow
def test_links_committed_before_sigkill_survive_a_restart(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    slugs = [f"durable-{i}" for i in range(5)]
    with service_process(env) as svc:
        for slug in slugs:
            created = httpx.post(f"{svc.url}/links", json={"url": f"https://example.com/{slug}", "slug": slug})
            assert created.status_code == 201
        assert httpx.get(f"{svc.url}/r/durable-0").status_code == 307
        svc.signal(signal.SIGKILL)
        assert svc.wait(5) == -signal.SIGKILL
    with service_process(env) as again:
        page = httpx.get(f"{again.url}/links", params={"limit": 100}).json()
        assert [item["slug"] for item in page["items"]] == slugs
        assert httpx.get(f"{again.url}/links/durable-0").json()["hits"] == 1
        again.signal(signal.SIGTERM)
        assert again.wait(10) == 0


def test_a_taken_port_exits_1_after_the_telemetry_flush_and_the_stop_summary(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        env = {"PATH": os.environ.get("PATH", ""), **base_env(tmp_path, ADMIN_PORT=str(taken.getsockname()[1]))}
        done = subprocess.run(
            [sys.executable, "-m", "svc"], check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=30
        )
    assert done.returncode == 1, done.stderr
    messages = [line["message"] for line in log_lines(done.stdout)]
    assert len(messages) >= 4, messages  # starting, cannot listen, flushed, stopped
    assert messages[-3].startswith("cannot listen on 127.0.0.1:"), messages
    assert messages[-2].startswith("telemetry flushed in "), messages
    assert messages[-1].startswith("stopped: both listeners closed, exit code 1 after "), messages
