"""Our Fluent Bit configs run by a real `fluent-bit` binary, pointed at loopback stand-ins.

The binary comes from FLUENT_BIT (a path); nothing installs one (no registry packages it and the repository never
builds it), so without it these tests skip, under CI too. Each config is copied to a temp dir with only addresses
and paths moved to the test's own (ports, buffer and tail paths); every filter and output option stays as written.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.backends import free_port
from harness.http_backend import HttpRequest, Reply
from tests.peers.process import PeerProcess, wait_until

from .files import DEPLOY

__all__ = ["CONFIGS", "BulkRecorder", "RunningFluentBit", "binary", "kill", "run"]

# Config name -> {file name in the temp dir: repository file}; the first file is the one `-c` names.
CONFIGS: dict[str, dict[str, Path]] = {
    "lab": {
        "fluent-bit.yaml": DEPLOY / "fluent-bit" / "fluent-bit.yaml",
        "parsers.yaml": DEPLOY / "fluent-bit" / "parsers.yaml",
    },
    "daemonset": {
        "fluent-bit.yaml": DEPLOY / "k8s" / "logging" / "fluent-bit.yaml",
        "svc-pipeline.yaml": DEPLOY / "k8s" / "logging" / "svc-pipeline.yaml",
        "parsers.yaml": DEPLOY / "fluent-bit" / "parsers.yaml",
    },
    "sidecar": {
        "fluent-bit.yaml": DEPLOY / "k8s" / "overlays" / "sidecar-logging" / "fluent-bit.yaml",
        "svc-pipeline.yaml": DEPLOY / "k8s" / "logging" / "svc-pipeline.yaml",
        "parsers.yaml": DEPLOY / "fluent-bit" / "parsers.yaml",
    },
}
# What the manifests set through the downward API.
K8S_ENV = {"NODE_NAME": "node-1", "POD_NAME": "svc-7d4b9c6f5-x2x9k", "POD_NAMESPACE": "svc", "POD_UID": "u1"}


def binary() -> str:
    """FLUENT_BIT's path, or a skip (CI included: building Fluent Bit stays out of this repository)."""
    path = os.environ.get("FLUENT_BIT", "")
    if not (path and Path(path).is_file() and os.access(path, os.X_OK)):
        pytest.skip("FLUENT_BIT is not set to a fluent-bit binary (none is packaged; build one to run these)")
    return path


@dataclass
class BulkRecorder:
    """A stand-in for Elasticsearch's `POST /_bulk`: records every action/document pair, answers item by item.

    `status(doc)` gives each item's status (201 by default), so a test can refuse one document or all of them."""

    status: Any = None
    bulks: list[list[tuple[dict[str, Any], dict[str, Any]]]] | None = None

    def __post_init__(self) -> None:
        self.bulks = []

    def __call__(self, request: HttpRequest) -> Reply:
        assert self.bulks is not None
        if (request.method, request.path.split("?")[0]) != ("POST", "/_bulk"):
            return Reply(405, {"error": f"not expected: {request.method} {request.path}"})
        lines = [json.loads(line) for line in request.body.decode().splitlines() if line.strip()]
        pairs = list(zip(lines[::2], lines[1::2], strict=True))
        self.bulks.append(pairs)
        statuses = [(self.status or (lambda _doc: 201))(doc) for _, doc in pairs]
        items = [{"create": {"_index": "svc-logs", "status": s}} for s in statuses]
        return Reply(200, {"took": 1, "errors": any(s >= 300 for s in statuses), "items": items})

    def documents(self) -> list[dict[str, Any]]:
        """Every document received, in arrival order (a retried bulk appears again)."""
        assert self.bulks is not None
        return [doc for bulk in self.bulks for _, doc in bulk]


@dataclass
class RunningFluentBit:
    """A started fluent-bit and where it listens."""

    process: PeerProcess
    http: str
    forward_port: int
    workdir: Path

    def metrics(self) -> dict[str, Any]:
        """/api/v1/metrics (per-plugin counters: records, retries, errors, dropped)."""
        result: dict[str, Any] = httpx.get(f"{self.http}/api/v1/metrics", timeout=5).json()
        return result

    def health(self) -> tuple[int, str]:
        """/api/v1/health: status code and body."""
        response = httpx.get(f"{self.http}/api/v1/health", timeout=5)
        return response.status_code, response.text.strip()


def _localize(doc: dict[str, Any], *, es_port: int, forward_port: int, http_port: int, work: Path) -> None:
    service = doc.get("service")
    if service is not None:
        service.update({"http_listen": "127.0.0.1", "http_port": http_port, "storage.path": f"{work}/buffer/"})
    pipeline = doc.get("pipeline", {})
    for plugin in pipeline.get("inputs", []):
        if plugin["name"] == "forward":
            plugin.update({"listen": "127.0.0.1", "port": forward_port})
        elif plugin["name"] == "tail":
            plugin.update({"path": f"{work}/logs/*.log", "db": f"{work}/tail.db"})
    for plugin in pipeline.get("outputs", []):
        if plugin["name"] == "es":
            plugin.update({"host": "127.0.0.1", "port": es_port})


@contextmanager
def run(
    name: str,
    work: Path,
    es_port: int,
    service: Mapping[str, Any] | None = None,
    edit: Callable[[str, dict[str, Any]], None] | None = None,
) -> Iterator[RunningFluentBit]:
    """Start the named config (CONFIGS) against an Elasticsearch stand-in on es_port; stopped by PID afterwards.

    `service` adds settings to the service section (e.g. a shorter retry scheduler); `edit(file name, document)`
    changes a file for a test that shows what an option does. A second run in the same `work` finds the first
    one's buffered chunks (a restart)."""
    exe = binary()
    forward_port, http_port = free_port(), free_port()  # fresh per run: a restarted one may not rebind at once
    (work / "logs").mkdir(parents=True, exist_ok=True)
    for file_name, source in CONFIGS[name].items():
        doc = yaml.safe_load(source.read_text())
        _localize(doc, es_port=es_port, forward_port=forward_port, http_port=http_port, work=work)
        if service and "service" in doc:
            doc["service"].update(service)
        if edit is not None:
            edit(file_name, doc)
        (work / file_name).write_text(yaml.safe_dump(doc, sort_keys=False))
    process = PeerProcess(
        f"fluent-bit-{name}", [exe, "-c", str(work / "fluent-bit.yaml")], work, env={} if name == "lab" else K8S_ENV
    )
    running = RunningFluentBit(process, f"http://127.0.0.1:{http_port}", forward_port, work)
    try:
        wait_until(
            lambda: httpx.get(running.http, timeout=1).status_code == 200,
            20,
            "fluent-bit's HTTP server",
            alive=process.check_alive,
        )
        yield running
    finally:
        process.stop()


def kill(running: RunningFluentBit) -> None:
    """SIGKILL, by PID: no flush, no goodbye (a crash)."""
    os.kill(running.process.pid, signal.SIGKILL)
    running.process.process.wait(10)
