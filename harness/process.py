"""A server as a child process: its output collected line by line while it runs, its start awaited with a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from harness.polling import wait_for

__all__ = ["Exit", "ServerProcess", "server_process", "wait_started"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Exit:
    """How a SIGTERM ended: the exit code and seconds to exit (both None when it outlived the wait), and when
    (time.monotonic()) the signal went out."""

    code: int | None
    seconds: float | None
    signalled_at: float


@dataclass
class ServerProcess:
    """A running child process; stdout and stderr, merged, collected line by line."""

    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def text(self) -> str:
        """Everything it printed so far."""
        return "".join(self.output)

    def final_text(self) -> str:
        """Everything it printed, once it has exited: waits for the last of its output to be read."""
        if self.reader is not None:
            self.reader.join(5)
        return self.text()

    def running(self) -> bool:
        """Whether it has not exited yet."""
        return self.proc.poll() is None

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send it a signal."""
        self.proc.send_signal(signum)

    def terminate(self, timeout: float) -> Exit:
        """SIGTERM, then wait up to timeout for the exit; the process is left running if it outlives that."""
        self.signal(signal.SIGTERM)
        signalled_at = time.monotonic()
        try:
            code = self.wait(timeout)
        except subprocess.TimeoutExpired:
            return Exit(None, None, signalled_at)
        return Exit(code, round(time.monotonic() - signalled_at, 3), signalled_at)

    def wait(self, timeout: float) -> int:
        """Wait for it to exit and for its last output to be read; the exit code."""
        code = self.proc.wait(timeout)
        if self.reader is not None:
            self.reader.join(5)
        return code


@contextmanager
def server_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Iterator[ServerProcess]:
    """argv started in cwd with env (plus PATH) as its whole environment; killed on the way out if still running."""
    proc = subprocess.Popen(
        list(argv),
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = ServerProcess(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.output.append(line)

    server.reader = threading.Thread(target=read, name=f"output-{proc.pid}", daemon=True)
    server.reader.start()
    try:
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        server.wait(10)


def wait_started(
    found: Callable[[], T | None], alive: Callable[[], bool], output: Callable[[], str], timeout: float, what: str
) -> T:
    """Poll found() until it has what it looks for (returned); AssertionError with output() if alive() turns
    False first (no waiting out the deadline for a process that is gone), or at the deadline."""

    def poll() -> tuple[T | None] | None:
        value = found()
        if value:
            return (value,)
        return None if alive() else (None,)  # a one-tuple is truthy: the poll ends either way

    (value,) = wait_for(poll, timeout, what=what)
    if value is None:
        raise AssertionError(f"exited before {what}: {output()[-4000:]}")
    return value
