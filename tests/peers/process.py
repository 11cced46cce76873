"""Free loopback ports, polling with a peer's habits, and peer processes started in a temp dir and stopped by PID."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from harness.polling import wait_for

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.1,
    alive: Callable[[], None] | None = None,
) -> T:
    """harness.polling.wait_for, where any answer but None or False counts (0 and [] too); ``alive`` is called on
    every round, so a peer that died stops the wait at once with its own error."""

    def answered() -> tuple[T] | None:
        result = probe()
        return None if result is None or result is False else (result,)

    (result,) = wait_for(answered, timeout, interval, what, alive=alive)
    return result


class PeerProcess:
    """A peer binary running in its own session, logging to a file; stopped by its PID, never by name."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        workdir: Path,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        user: int | None = None,
    ) -> None:
        """``stdin``: bytes written to the peer's stdin, which then stays open; ``user``: a uid (and gid) to run as."""
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            cwd=workdir,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # ^C in the terminal reaches pytest, which then stops the peer cleanly
            user=user,
            group=user,
            extra_groups=None if user is None else [],
        )
        if stdin is not None and self.process.stdin is not None:
            self.process.stdin.write(stdin)
            self.process.stdin.flush()

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        """Raise with the peer's log when it has exited."""
        code = self.process.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}; last log lines:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        self._log.close()
        if self.process.stdin is not None:
            self.process.stdin.close()
        return self.process.returncode
