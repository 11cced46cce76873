"""A fake Sentry ingest endpoint: in mode ``ok`` it is the lab's own sink (deploy/sentry-sink/sink.py) deciding every
answer, plus a record of each raw ingest request (path, headers, decoded envelope) so tests can check the wire
protocol itself; in the other modes it refuses, hangs, or answers 500/503 (harness.backends).

    with SentryReceiver() as sentry:
        env["SENTRY_DSN"] = sentry.dsn
        ...
        event = sentry.wait_event(trace_id)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from harness.backends import Mode, Records
from harness.http_backend import HttpBackend, HttpRequest, Reply

__all__ = ["SINK_PATH", "IngestRequest", "SentryReceiver", "load_sink"]

SINK_PATH = Path(__file__).resolve().parents[1] / "deploy" / "sentry-sink" / "sink.py"
MODULE_NAME = "svc_lab_sentry_sink"  # the folder name has a dash, so it cannot be imported as a package


def load_sink() -> ModuleType:
    """deploy/sentry-sink/sink.py as a module (loaded once; the lab and the tests run the same code)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, SINK_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SINK_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses look their module up while the class body runs
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True, slots=True)
class IngestRequest(HttpRequest):
    """One POST the SDK made, as sent, with its envelope decoded: the envelope's header and (item header, payload)."""

    envelope_header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]
    raw_envelope: bytes

    def events(self) -> list[dict[str, Any]]:
        """The payloads of the envelope's `event` items."""
        return [json.loads(payload) for header, payload in self.items if header.get("type") == "event"]


class SentryReceiver(HttpBackend):
    """Sentry's envelope ingest on a free loopback port, expecting `key` (any key when None); `dsn` is what svc needs.

    Keeps the latest `max_events` events the sink accepted; `events_received()` counts them all, across restarts.
    """

    def __init__(
        self,
        mode: Mode = "ok",
        *,
        key: str | None = "telemetry-test-key",
        project_id: int = 42,
        host: str = "127.0.0.1",
        port: int = 0,
        keep: bool = True,
        max_events: int = 1000,
    ) -> None:
        super().__init__(mode=mode, host=host, port=port, keep=False)  # its records are the ingest requests
        self.key = key
        self.project_id = project_id
        self._sink = load_sink()
        self._keep_ingests = keep
        self._ingests: Records[IngestRequest] = Records()
        self._events: Records[Any] = Records(max_events)  # the sink's StoredEvent
        self._total = 0
        self._total_lock = threading.Lock()

    @property
    def dsn(self) -> str:
        """The SENTRY_DSN pointing here."""
        return f"http://{self.key or 'public'}@{self.host}:{self.port}/{self.project_id}"

    def requests(self) -> list[IngestRequest]:
        """Every ingest POST that got past the path and key checks, so far."""
        return self._ingests.all()

    def events(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """The event payloads the sink accepted, newest first (optionally of one trace)."""
        return self._payloads(self._events.all(), trace_id)

    def events_received(self) -> int:
        """How many events and transactions the sink accepted since this object was made."""
        with self._total_lock:
            return self._total

    def wait_event(self, trace_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The one stored event of this trace, waiting for it to arrive."""
        events = self._events.wait(lambda stored: self._payloads(stored, trace_id), timeout)
        if not events:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for a Sentry event for trace {trace_id}")
        assert len(events) == 1, events
        return events[0]

    def answer(self, request: HttpRequest) -> Reply:
        """The sink's own answer."""
        if request.method != "POST":
            return Reply(404, {"detail": "not found"})
        try:
            events = self._sink.ingest(
                request.path,
                request.headers.get("x-sentry-auth"),
                request.headers.get("content-encoding"),
                lambda: self._read(request),
                self.key,
            )
        except self._sink.SinkError as exc:
            # The sink's answer; a body it left unread means this connection cannot carry another request.
            return Reply(int(exc.status), {"detail": exc.detail}, close=True)
        self._events.add(*events)
        with self._total_lock:
            self._total += len(events)
        return Reply(200, {"id": events[0].event_id if events else None})

    def _read(self, request: HttpRequest) -> bytes:
        """The body, as the sink reads it once path and key are right; recorded with its envelope decoded."""
        if self._keep_ingests:
            try:
                envelope = cast(bytes, self._sink.decode_body(request.body, request.headers.get("content-encoding")))
                header, items = self._sink.parse_envelope(envelope)
            except Exception:  # the sink itself answers the error; the record keeps what could be read
                envelope, header, items = request.body, {}, []
            self._ingests.add(
                IngestRequest(**_fields(request), envelope_header=header, items=items, raw_envelope=envelope)
            )
        return request.body

    @staticmethod
    def _payloads(stored: list[Any], trace_id: str | None) -> list[dict[str, Any]]:
        newest_first = reversed(stored)
        return [
            cast(dict[str, Any], event.payload)
            for event in newest_first
            if event.type == "event" and (not trace_id or event.trace_id == trace_id.lower())
        ]


def _fields(request: HttpRequest) -> dict[str, Any]:
    return {"method": request.method, "path": request.path, "headers": request.headers, "body": request.body}
