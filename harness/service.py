"""Start the real service, in a thread through run() or as a subprocess, and find its ports from its logs."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.checkout import REPO
from harness.polling import wait_for
from harness.process import Exit, ServerProcess, server_process, wait_started
from svc.main import run

__all__ = [
    "ServiceProcess",
    "ServiceThread",
    "base_env",
    "listeners",
    "log_lines",
    "service_process",
    "service_thread",
]


class _Buffer(io.StringIO):
    """A StringIO whose reads and writes are safe while the service thread writes to it."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, s: str) -> int:
        with self._lock:
            return super().write(s)

    def text(self) -> str:
        with self._lock:
            return self.getvalue()


def log_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as JSON (fails the test on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def listeners(text: str) -> dict[str, tuple[str, int]] | None:
    """(address, port) of each listener its startup lines announce, once both public and admin have."""
    found = {}
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "labels.listener" in doc:
            found[doc["labels.listener"]] = (doc["server.address"], doc["server.port"])
    return found if {"public", "admin"} <= found.keys() else None


def _listening(
    svc: _Running,
    text: Callable[[], str],
    alive: Callable[[], bool],
    exited: Callable[[], str],
    timeout: float,
) -> None:
    ports = wait_started(lambda: listeners(text()), alive, exited, timeout, "listener log lines")
    svc.public, svc.admin = ports["public"], ports["admin"]


def base_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """A service environment on free loopback ports with its database in tmp_path."""
    env = {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": "0",
        "DATABASE_PATH": str(tmp_path / "svc.db"),
        "SHUTDOWN_TIMEOUT": "5",
    }
    env.update(overrides)
    return env


@dataclass
class _Running:
    public: tuple[str, int] = ("", 0)
    admin: tuple[str, int] = ("", 0)

    @property
    def url(self) -> str:
        """Base URL of the public listener."""
        return f"http://{self.public[0]}:{self.public[1]}"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin listener."""
        return f"http://{self.admin[0]}:{self.admin[1]}"

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Poll /readyz until it answers 200."""
        wait_for(lambda: httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200, timeout, what="/readyz 200")


@dataclass
class ServiceThread(_Running):
    """The service running in this process through run(), stopped through its `stop` event."""

    stdout: _Buffer = field(default_factory=_Buffer)
    stderr: _Buffer = field(default_factory=_Buffer)
    stop: threading.Event = field(default_factory=threading.Event)
    exit_code: int | None = None

    def logs(self) -> list[dict[str, Any]]:
        """What it wrote to stdout so far, one dict per line."""
        return log_lines(self.stdout.text())


@contextmanager
def service_thread(env: Mapping[str, str], timeout: float = 15.0, *, ready: bool = True) -> Iterator[ServiceThread]:
    """Run svc in a thread with env as its whole environment; yield once /readyz answers 200 (or, with
    ready=False, once it listens)."""
    svc = ServiceThread()

    def target() -> None:
        svc.exit_code = run(["svc"], dict(env).get, svc.stdout, stderr=svc.stderr, stop=svc.stop)

    thread = threading.Thread(target=target, name="svc", daemon=True)
    thread.start()
    try:

        def text() -> str:
            return svc.stdout.text() + svc.stderr.text()

        _listening(svc, text, thread.is_alive, lambda: f"service exited with {svc.exit_code}:\n{text()}", timeout)
        if ready:
            svc.wait_ready(timeout)
        yield svc
    finally:
        svc.stop.set()
        thread.join(timeout)
        assert not thread.is_alive(), "service thread did not stop"


@dataclass
class ServiceProcess(_Running):
    """The service as a real process (`python -m svc`), for signals and exit codes."""

    server: ServerProcess = field(kw_only=True)

    @property
    def proc(self) -> subprocess.Popen[str]:
        """The process itself."""
        return self.server.proc

    def text(self) -> str:
        """Stdout and stderr so far."""
        return self.server.text()

    def logs(self) -> list[dict[str, Any]]:
        """Stdout so far, one dict per line."""
        return log_lines(self.text())

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the process."""
        self.server.signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for exit; return the exit code."""
        return self.server.wait(timeout)

    def terminate(self, timeout: float) -> Exit:
        """SIGTERM and wait for the exit, timed (harness.process.ServerProcess.terminate)."""
        return self.server.terminate(timeout)


@contextmanager
def service_process(env: Mapping[str, str], timeout: float = 20.0) -> Iterator[ServiceProcess]:
    """Start `python -m svc` with env (plus PATH); yield once /readyz answers 200; kill it if still running."""
    with server_process([sys.executable, "-m", "svc"], env, REPO) as server:
        svc = ServiceProcess(server=server)

        def exited() -> str:
            return f"service exited with {server.proc.poll()}:\n{server.final_text()}"

        _listening(svc, server.text, server.running, exited, timeout)
        svc.wait_ready(timeout)
        yield svc
