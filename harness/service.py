"""Start the real service, in a thread through run() or as a subprocess, and find its ports from its logs."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.checkout import REPO
from harness.polling import wait_for
from svc.main import run

__all__ = ["REPO", "ServiceProcess", "ServiceThread", "base_env", "log_lines", "service_process", "service_thread"]


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


def _listeners(text: str) -> dict[str, tuple[str, int]] | None:
    found = {}
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "labels.listener" in doc:
            found[doc["labels.listener"]] = (doc["server.address"], doc["server.port"])
    return found if {"public", "admin"} <= found.keys() else None


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
        ports = wait_for(
            lambda: _listeners(svc.stdout.text()) or (None if thread.is_alive() else {"dead": ("", 0)}),
            timeout,
            what="listener log lines",
        )
        if "dead" in ports:
            raise AssertionError(f"service exited with {svc.exit_code}:\n{svc.stdout.text()}{svc.stderr.text()}")
        svc.public, svc.admin = ports["public"], ports["admin"]
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

    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    def text(self) -> str:
        """Stdout so far."""
        return "".join(self.output)

    def logs(self) -> list[dict[str, Any]]:
        """Stdout so far, one dict per line."""
        return log_lines(self.text())

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for exit; return the exit code."""
        assert self.proc is not None
        code = self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(5)
        return code


@contextmanager
def service_process(env: Mapping[str, str], timeout: float = 20.0) -> Iterator[ServiceProcess]:
    """Start `python -m svc` with env (plus PATH); yield once /readyz answers 200; kill it if still running."""
    full_env = {"PATH": os.environ.get("PATH", ""), **env}
    proc = subprocess.Popen(
        [sys.executable, "-m", "svc"],
        env=full_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    svc = ServiceProcess(proc=proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            svc.output.append(line)

    svc._reader = threading.Thread(target=read, daemon=True)
    svc._reader.start()
    try:
        ports = wait_for(
            lambda: _listeners(svc.text()) or (None if proc.poll() is None else {"dead": ("", 0)}),
            timeout,
            what="listener log lines",
        )
        if "dead" in ports:
            raise AssertionError(f"service exited with {proc.returncode}:\n{svc.text()}")
        svc.public, svc.admin = ports["public"], ports["admin"]
        svc.wait_ready(timeout)
        yield svc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
