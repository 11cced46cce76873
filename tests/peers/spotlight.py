"""Real Sentry Spotlight (npm @spotlightjs/spotlight, installed by scripts/install-peers) on a free port."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.peers.process import PeerProcess, wait_until

__all__ = ["SpotlightPeer"]

LISTENING = re.compile(r"Spotlight listening on (\d+)")


class SpotlightPeer:
    """`spotlight server -p 0`: the port it chose is read from its own log line."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.process = PeerProcess("spotlight", [binary, "server", "-p", "0"], workdir)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def dsn(self, key: str = "lab", project: int = 1) -> str:
        """A DSN pointing an SDK at it (Spotlight takes any key and project: /api/<project>/envelope/)."""
        return f"http://{key}@127.0.0.1:{self.port}/{project}"

    def wait_ready(self) -> SpotlightPeer:
        def listening() -> int | None:
            match = LISTENING.search(self.process.log_tail(50))
            return int(match.group(1)) if match else None

        self.port = wait_until(listening, 30, "Spotlight's 'listening on' line", alive=self.process.check_alive)
        wait_until(lambda: httpx.get(f"{self.url}/health", timeout=2).status_code == 200, 10, "Spotlight /health")
        return self

    def stop(self) -> None:
        self.process.stop()
