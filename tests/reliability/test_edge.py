"""The HTTP edge against hostile clients: the real process, raw sockets (reliability/hostile.py), small limits.

Each test is one row of issue 14's table at a scale that runs in seconds; reliability/edge.py runs the full-size
cases against svc before and after and against Go net/http.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from harness.checkout import REPO
from harness.polling import wait_for
from harness.service import ServiceProcess, base_env, log_lines, service_process
from reliability.edge import start_svc
from reliability.hostile import big_head, get, hammer, many_headers, slowloris
from svc.exchange import LOGGED_VALUE_CHARS
from tests.telemetry.support import scrape

MB = 2**20


def _edge_lines(svc: ServiceProcess, reason: str) -> list[dict[str, Any]]:
    return [d for d in svc.logs() if d.get("event.dataset") == "svc.edge" and d.get("error.type") == reason]


def _rejected(svc: ServiceProcess, reason: str) -> float:
    return scrape(svc.admin_url).value("svc_http_rejected_total", listener="public", reason=reason)


@pytest.fixture(scope="module")
def edge_svc(tmp_path_factory: pytest.TempPathFactory) -> Any:
    env = base_env(tmp_path_factory.mktemp("edge"), HEADER_TIMEOUT="0.5")
    with service_process(env) as svc:
        yield svc


def test_a_50_mb_header_gets_431_before_the_client_has_sent_it(edge_svc: ServiceProcess) -> None:
    answer = big_head(edge_svc.public[1], 50 * MB)

    assert answer.status == 431, answer
    assert b"application/problem+json" in answer.head
    # Refused while the head was read: most of the 50 MB was never sent (loopback buffers hold a few MB).
    assert answer.sent_bytes is not None
    assert answer.sent_bytes < 25 * MB, answer.sent_bytes


def test_a_head_just_over_max_header_bytes_gets_431(edge_svc: ServiceProcess) -> None:
    assert big_head(edge_svc.public[1], 17 * 1024).status == 431


def test_a_head_under_max_header_bytes_is_served(edge_svc: ServiceProcess) -> None:
    assert big_head(edge_svc.public[1], 12 * 1024).status == 200


def test_more_header_fields_than_max_headers_get_431(edge_svc: ServiceProcess) -> None:
    assert many_headers(edge_svc.public[1], 150).status == 431


def test_header_fields_up_to_max_headers_are_served(edge_svc: ServiceProcess) -> None:
    assert many_headers(edge_svc.public[1], 90).status == 200


def test_other_clients_are_served_while_a_huge_head_is_refused(edge_svc: ServiceProcess) -> None:
    results: list[int | None] = []
    sender = threading.Thread(target=lambda: results.append(big_head(edge_svc.public[1], 50 * MB).status))
    sender.start()
    others = [get(edge_svc.public[1]).status for _ in range(5)]
    sender.join(30)

    assert others == [200] * 5
    assert results == [431]


def test_refused_heads_are_counted_and_logged_once_per_interval(edge_svc: ServiceProcess) -> None:
    before = _rejected(edge_svc, "header_limit")
    for _ in range(3):
        assert many_headers(edge_svc.public[1], 200).status == 431

    wait_for(lambda: _rejected(edge_svc, "header_limit") == before + 3, 5, what="3 more rejections counted")
    lines = _edge_lines(edge_svc, "header_limit")
    assert 1 <= len(lines) <= 2  # the module's earlier 431s may have opened the interval
    assert all(line["log.level"] == "warning" and line["http.response.status_code"] == 431 for line in lines)


def test_a_trickled_head_is_answered_408_and_closed_after_header_timeout(edge_svc: ServiceProcess) -> None:
    result = slowloris(edge_svc.public[1], connections=20, interval=0.1, duration=10, probe_every=0.1)

    assert result.closed_by_server == result.opened == 20
    assert result.answers == {408: 20}
    assert result.probes_served == result.probes > 0


def test_a_connection_that_sends_nothing_is_closed_after_header_timeout(edge_svc: ServiceProcess) -> None:
    with socket.create_connection(edge_svc.public, timeout=10) as sock:
        assert sock.recv(100) == b""  # a FIN, not a reset and not a wait forever


def test_values_copied_into_log_lines_are_truncated(edge_svc: ServiceProcess) -> None:
    long_path = "/links/" + "p" * 5000
    with socket.create_connection(edge_svc.public, timeout=10) as sock:
        sock.sendall(
            f"GET {long_path} HTTP/1.1\r\nhost: x\r\nuser-agent: {'u' * 5000}\r\nx-request-id: trunc-1\r\n\r\n".encode()
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 ")

    [line] = wait_for(
        lambda: [d for d in edge_svc.logs() if d.get("http.request.id") == "trunc-1"] or None, 5, what="access line"
    )
    assert len(line["user_agent.original"]) == LOGGED_VALUE_CHARS
    assert line["url.path"] == long_path[:LOGGED_VALUE_CHARS]


def _busy(port: int) -> socket.socket:
    # A connection with a request in flight: not a slow head, so the cap cannot evict it.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /slow?ms=3000 HTTP/1.1\r\nhost: x\r\n\r\n")
    return sock


def test_connections_over_max_connections_get_503_counted_and_logged(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path, MAX_CONNECTIONS="10")) as svc:
        held = [_busy(svc.public[1]) for _ in range(10)]
        try:
            wait_for(lambda: _active(svc) == 10, 5, what="10 requests in flight")
            answer = get(svc.public[1])
        finally:
            for sock in held:
                sock.close()
        wait_for(lambda: _rejected(svc, "connection_limit") >= 1, 5, what="connection_limit counted")
        lines = _edge_lines(svc, "connection_limit")

    assert answer.status == 503
    assert len(lines) == 1


def test_at_the_cap_a_new_connection_takes_the_slot_of_the_slowest_head(tmp_path: Path) -> None:
    with service_process(base_env(tmp_path, MAX_CONNECTIONS="10")) as svc:
        trickling = [socket.create_connection(svc.public, timeout=10) for _ in range(10)]
        try:
            for sock in trickling:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nx-slow: ")
            # Once their heads are older than the eviction age, a fast client is served instead of refused.
            served = wait_for(lambda: get(svc.public[1]).status == 200 or None, 10, what="a fast client served")
            evicted = [sock.recv(200) for sock in trickling[:1]]
        finally:
            for sock in trickling:
                sock.close()
        counted = _rejected(svc, "slow_head_evicted")

    assert served
    assert evicted[0].startswith(b"HTTP/1.1 408 ")  # the oldest head went first
    assert counted >= 1


def test_max_connections_is_lowered_to_fit_the_fd_limit_and_says_so(tmp_path: Path) -> None:
    with start_svc("fd", REPO, tmp_path, _NOFILE="256") as svc:
        held = []
        try:
            held = [_busy(svc.port) for _ in range(128)]
            admin = _admin_url(svc.text())
            wait_for(lambda: _active_at(admin) == 128, 10, what="128 requests in flight")
            answer = get(svc.port)
        finally:
            for sock in held:
                sock.close()
        text = svc.text()

    assert "MAX_CONNECTIONS=1000 does not fit the fd limit; capped at 128" in text
    assert answer.status == 503  # answered at the cap, not reset by an accept that found no fd
    assert '"error.type":"connection_limit"' in text


def test_fd_exhaustion_is_logged(tmp_path: Path) -> None:
    # The fd watcher in a real process whose fd table is nearly full (uvloop itself says nothing on EMFILE).
    script = (
        "import asyncio, logging, resource, sys\n"
        "from svc.edge import watch_fds\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))\n"
        "held = [open('/dev/null') for _ in range(110)]\n"
        "async def main():\n"
        "    try:\n"
        "        await asyncio.wait_for(watch_fds(interval=0.05, log_interval=10), 1)\n"
        "    except TimeoutError:\n"
        "        pass\n"
        "asyncio.run(main())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=30, check=False
    )

    lines = [line for line in out.stdout.splitlines() if "file descriptors nearly exhausted" in line]
    assert len(lines) == 1, out.stdout + out.stderr
    assert lines[0].startswith("ERROR ")


@pytest.mark.parametrize("round_no", [1, 2])
def test_sigterm_under_a_fresh_connection_hammer_resets_nothing(tmp_path: Path, round_no: int) -> None:
    with service_process(base_env(tmp_path, SHUTDOWN_DRAIN="0.3")) as svc:
        stop = threading.Event()
        results = []
        thread = threading.Thread(target=lambda: results.append(hammer(svc.public[1], "/healthz", 16, stop)))
        thread.start()
        wait_for(lambda: _accessed(svc) >= 200, 10, what="200 requests served")
        svc.signal(signal.SIGTERM)
        code = svc.wait(15)
        stop.wait(1.5)  # the hammer keeps going past the exit: late connections must be refused, not reset
        stop.set()
        thread.join(20)

    [result] = results
    assert code == 0
    assert result.failures == 0, dict(result.failed)
    assert result.connect_timeouts == 0
    assert result.refused > 0
    assert result.ok > 200


def _active(svc: ServiceProcess) -> float:
    return _active_at(svc.admin_url)


def _active_at(admin_url: str) -> float:
    return scrape(admin_url).value("http_server_active_requests", method="GET")


def _admin_url(text: str) -> str:
    [line] = [d for d in log_lines(text) if d.get("labels.listener") == "admin"]
    return f"http://{line['server.address']}:{line['server.port']}"


def _accessed(svc: ServiceProcess) -> int:
    return svc.text().count('"event.dataset":"svc.access"')
