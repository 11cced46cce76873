"""Headless Chromium driven over the DevTools protocol: load a page, wait for a condition, read the DOM, screenshot."""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection, connect

from harness.polling import wait_for

__all__ = ["FLAGS", "Page", "chromium_page"]

# No sandbox (containers run as root), no GPU, and none of the browser's own traffic (updates, sync, field trials),
# so every request the page log records is one the page itself made.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class Page:
    """One tab, attached over its DevTools websocket; events are kept as they arrive between commands."""

    def __init__(self, socket: ClientConnection) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events that arrive first are recorded)."""
        command_id = next(self._ids)
        self._socket.send(json.dumps({"id": command_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=30))
            if message.get("id") == command_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for since Network.enable."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def exceptions(self) -> list[str]:
        """Uncaught JavaScript exceptions since Runtime.enable."""
        return [
            e["params"]["exceptionDetails"].get("text", "")
            for e in self.events
            if e.get("method") == "Runtime.exceptionThrown"
        ]

    def screenshot(self, path: Path, width: int, height: int) -> None:
        """A PNG of the page at width x height CSS pixels."""
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


@contextmanager
def chromium_page(binary: str) -> Iterator[Page]:
    """A fresh headless Chromium (its own profile directory) with one blank tab; closed on exit."""
    with tempfile.TemporaryDirectory(prefix="svc-chromium-") as tmp:
        profile, log = Path(tmp) / "profile", Path(tmp) / "chromium.log"
        with log.open("wb") as log_file:
            process = subprocess.Popen(
                [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
            )
        try:
            # Chromium writes the port it picked for --remote-debugging-port=0 into the profile directory.
            active = profile / "DevToolsActivePort"

            def devtools_port() -> str | None:
                if process.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise AssertionError(f"chromium exited with {process.returncode}:\n{tail}")
                return active.read_text().split("\n")[0] if active.is_file() else None

            port = wait_for(devtools_port, 30, what="Chromium's DevTools port")
            targets = wait_for(
                lambda: [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"],
                10,
                what="the blank tab",
            )
            with connect(targets[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as socket:
                page = Page(socket)
                for domain in ("Page", "Runtime", "Network"):
                    page.send(f"{domain}.enable")
                yield page
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
