"""The Sentry receiver: the lab's deploy/sentry-sink/sink.py (stdlib, decodes real envelopes), plus a record of
each raw ingest request (path, headers, body) so tests can check the wire protocol itself."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Self

from tests.peers.sentry import load_sink
from tests.support.polling import wait_for

__all__ = ["IngestRequest", "SentryReceiver"]


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One POST the SDK made: path, headers (lowercase names), the decoded envelope's header and items."""

    path: str
    headers: dict[str, str]
    envelope_header: dict[str, Any]
    items: list[tuple[dict[str, Any], bytes]]
    raw_envelope: bytes

    def events(self) -> list[dict[str, Any]]:
        """The payloads of the envelope's `event` items."""
        return [json.loads(payload) for header, payload in self.items if header.get("type") == "event"]


class SentryReceiver:
    """A running sink on a free loopback port that expects `key`; `dsn` is what the service needs."""

    def __init__(self, key: str = "telemetry-test-key", project_id: int = 42) -> None:
        sink = load_sink()
        self._sink_module = sink
        self._sink: Any = sink.SentrySink(host="127.0.0.1", port=0, key=key, project_id=project_id)
        self._requests: list[IngestRequest] = []
        self._lock = threading.Lock()
        receiver = self

        def _read_body(handler: Any) -> bytes:
            body: bytes = sink.SinkHandler._read_body(handler)
            receiver._keep(handler.path, {k.lower(): v for k, v in handler.headers.items()}, body)
            return body

        # The sink's own handler, with its body reader wrapped: the sink still decodes, checks and stores.
        self._sink.server.RequestHandlerClass = type(
            "RecordingSinkHandler", (sink.SinkHandler,), {"_read_body": _read_body}
        )
        self.key = key
        self.project_id = project_id

    def _keep(self, path: str, headers: dict[str, str], body: bytes) -> None:
        try:
            envelope = self._sink_module.decode_body(body, headers.get("content-encoding"))
            header, items = self._sink_module.parse_envelope(envelope)
        except Exception:  # the sink itself answers the error; the record keeps what could be read
            envelope, header, items = body, {}, []
        with self._lock:
            self._requests.append(IngestRequest(path, headers, header, items, envelope))

    @property
    def dsn(self) -> str:
        """The DSN pointing at this receiver."""
        return str(self._sink.dsn)

    def requests(self) -> list[IngestRequest]:
        """Every ingest POST so far."""
        with self._lock:
            return list(self._requests)

    def events(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """The event payloads the sink accepted and stored, newest first (optionally of one trace)."""
        return [stored.payload for stored in self._sink.events(trace_id) if stored.type == "event"]

    def wait_event(self, trace_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The one stored event of this trace, waiting for it to arrive."""
        events = wait_for(lambda: self.events(trace_id), timeout, what=f"a Sentry event for trace {trace_id}")
        assert len(events) == 1, events
        return events[0]

    def start(self) -> Self:
        self._sink.start()
        return self

    def stop(self) -> None:
        self._sink.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
