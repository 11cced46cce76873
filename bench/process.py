"""One variant's server as a running process: started pinned to a core, polled until ready, read, stopped."""

from __future__ import annotations

import contextlib
import http.client
import time
from pathlib import Path

from bench.launch import Launch
from harness.process import start_process, wait_started
from harness.procfs import process_tree

__all__ = ["READY_TIMEOUT", "STOP_TIMEOUT", "Server", "http_get"]

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET path on 127.0.0.1:port: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """One variant's server process (harness.process), pinned to a core, its stdout and stderr in a log file."""

    def __init__(self, launch: Launch, cpu: int, log_path: Path) -> None:
        self.launch = launch
        self.log_path = log_path
        self.started = time.monotonic()
        # taskset execs the command: the pid is the server's own. A file, not a pipe drained by a thread: a variant
        # writes thousands of access lines a second, and in a file they cost the benchmark's process nothing until
        # counted after the window.
        argv = ["taskset", "-c", str(cpu), *launch.argv]
        self.process = start_process(argv, launch.env, launch.cwd, log_path=log_path)
        self.proc = self.process.proc

    def wait_ready(self, path: str) -> float:
        """Seconds from spawn to the first 200 on path."""

        def answers() -> bool:
            with contextlib.suppress(OSError, http.client.HTTPException):
                return http_get(self.launch.port, path, timeout=1.0)[0] == 200
            return False

        # Polled every 5 ms: startup is measured to about this.
        wait_started(answers, self.process.running, self.log_tail, READY_TIMEOUT, f"a 200 on {path}", interval=0.005)
        return time.monotonic() - self.started

    def pids(self) -> list[int]:
        """The server process and its descendants."""
        return process_tree(self.proc.pid)

    def log_lines(self) -> int:
        """Lines written to the log so far."""
        count = 0
        with self.log_path.open("rb") as f:
            while chunk := f.read(1 << 20):
                count += chunk.count(b"\n")
        return count

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the log, for error messages."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def metrics(self) -> str | None:
        """The admin listener's /metrics text (svc variants only; None without one or when it does not answer)."""
        if self.launch.admin_port is None:
            return None
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = http_get(self.launch.admin_port, "/metrics", timeout=5.0)
            if status == 200:
                return body.decode()
        return None

    def dropped_spans(self) -> float | None:
        """svc_telemetry_dropped_total{signal="spans"}, all reasons, from the admin listener (svc variants only)."""
        text = self.metrics()
        if text is None:
            return None
        # One series per reason (queue_full, export_failed, ...): their sum is every lost span.
        spans = [line for line in text.splitlines() if line.startswith("svc_telemetry_dropped_total{")]
        return sum(float(line.split()[-1]) for line in spans if 'signal="spans"' in line)

    def stop(self) -> tuple[float, bool]:
        """SIGTERM, wait; returns (seconds to exit, whether it had to be killed)."""
        return self.process.stop(STOP_TIMEOUT)
