"""A server as a child process: its output collected (line by line, or in a file), its start awaited with a deadline."""

from __future__ import annotations

import contextlib
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

__all__ = ["Exit", "ServerProcess", "server_process", "start_process", "wait_started"]

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
    """A running child process; stdout and stderr, merged, collected line by line (or written to log_path)."""

    proc: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    log_path: Path | None = None

    def text(self) -> str:
        """Everything it printed so far."""
        if self.log_path is not None:
            return self.log_path.read_text(errors="replace")
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

    def stop(self, timeout: float) -> tuple[float, bool]:
        """SIGTERM, wait up to timeout, SIGKILL if it outlives that: (seconds to exit, whether it was killed)."""
        started = time.monotonic()
        if self.running() and self.terminate(timeout).code is None:
            self.proc.kill()
            self.wait(10)
            return time.monotonic() - started, True
        self.wait(10)
        return time.monotonic() - started, False


def start_process(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, *, log_path: Path | None = None
) -> ServerProcess:
    """argv started in cwd with env (plus PATH) as its whole environment; the caller stops it.

    Its output is read line by line by a thread, or, with log_path, written to that file by the child itself: a
    server writing thousands of lines a second then costs the process that started it nothing (the benchmark).
    """
    full_env = {"PATH": os.environ.get("PATH", ""), **env}
    with contextlib.ExitStack() as files:
        # With log_path the child writes the file through its own copy of the descriptor; ours closes at once.
        stdout = files.enter_context(log_path.open("wb")) if log_path is not None else subprocess.PIPE
        proc = subprocess.Popen(list(argv), env=full_env, cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT, text=True)
    if log_path is not None:
        return ServerProcess(proc, log_path=log_path)
    server = ServerProcess(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            server.output.append(line)

    server.reader = threading.Thread(target=read, name=f"output-{proc.pid}", daemon=True)
    server.reader.start()
    return server


@contextmanager
def server_process(argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> Iterator[ServerProcess]:
    """start_process for the block; killed on the way out if still running."""
    server = start_process(argv, env, cwd)
    try:
        yield server
    finally:
        if server.running():
            server.proc.kill()
        server.wait(10)


def wait_started(
    found: Callable[[], T | None],
    alive: Callable[[], bool],
    output: Callable[[], str],
    timeout: float,
    what: str,
    interval: float = 0.05,
) -> T:
    """Poll found() until it has what it looks for (returned); AssertionError with output() if alive() turns
    False first (no waiting out the deadline for a process that is gone), or at the deadline."""

    def poll() -> tuple[T | None] | None:
        value = found()
        if value:
            return (value,)
        return None if alive() else (None,)  # a one-tuple is truthy: the poll ends either way

    (value,) = wait_for(poll, timeout, interval, what=what)
    if value is None:
        raise AssertionError(f"exited before {what}: {output()[-4000:]}")
    return value
