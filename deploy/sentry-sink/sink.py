"""A no-sign-up Sentry ingest sink: decodes real SDK envelopes, keeps the latest events, and shows them.

It speaks the part of Sentry's ingest protocol that SDKs use: ``POST /api/<project_id>/envelope/`` with an
``X-Sentry-Auth: Sentry sentry_key=<public key>, sentry_version=7, ...`` header (or a ``sentry_key`` query
parameter), a body that is gzip-, brotli- or not compressed, and an envelope: one JSON header line, then items,
each a JSON item header line (``type``, optional ``length`` in bytes) followed by its payload.

Read side: ``GET /api/events`` (JSON, newest first, ``?trace_id=`` and ``?limit=`` filters), ``GET /healthz``,
and ``GET /`` (an HTML table). Standard library only (brotli is used when importable), so the lab runs it on a
plain Python image; the test suite runs :class:`SentrySink` as a peer and :func:`ingest` as its fake Sentry's answer.

    python sink.py --host 0.0.0.0 --port 8969 --key <public key>    # DSN: http://<key>@<host>:8969/<project>
    python sink.py --healthcheck --port 8969                        # exit 0 when the sink answers /healthz
"""

from __future__ import annotations

import argparse
import html
import importlib
import json
import os
import re
import signal
import sys
import threading
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

ENVELOPE_PATH = re.compile(r"^/api/(?P<project>\d+)/envelope/?$")
AUTH_PAIR = re.compile(r"(\w+)=([^,\s]+)")
MAX_BODY_BYTES = 20 * 1024 * 1024  # Sentry's own limit for a compressed envelope is 40 MB; a lab needs far less.
MAX_DECODED_BYTES = 50 * 1024 * 1024  # guards against a compression bomb
STORED_TYPES = frozenset({"event", "transaction"})  # sessions, client reports, attachments are acknowledged only


class SinkError(Exception):
    """A request the sink refuses, with the HTTP status Sentry would answer."""

    def __init__(self, status: HTTPStatus, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class StoredEvent:
    """One decoded item, as listed by ``GET /api/events``."""

    event_id: str
    project_id: str
    type: str
    title: str
    level: str
    trace_id: str | None
    received_at: float
    payload: dict[str, Any]


def _load_brotli() -> Callable[[bytes], bytes] | None:
    """Brotli's decompress when the optional ``brotli`` module is installed (sentry-sdk prefers ``br`` then)."""
    try:
        module = importlib.import_module("brotli")
    except ImportError:
        return None
    return cast(Callable[[bytes], bytes], module.decompress)


def _gunzip(body: bytes) -> bytes:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    data = decompressor.decompress(body, MAX_DECODED_BYTES)
    if decompressor.unconsumed_tail:
        raise SinkError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "decoded envelope too large")
    return data


BROTLI_DECOMPRESS = _load_brotli()
# Content-Encoding -> decoder. Without the brotli module, `br` is absent and answered with 415.
DECODERS: dict[str, Callable[[bytes], bytes]] = {"gzip": _gunzip, "x-gzip": _gunzip}
if BROTLI_DECOMPRESS is not None:
    DECODERS["br"] = BROTLI_DECOMPRESS


def decode_body(body: bytes, content_encoding: str | None) -> bytes:
    """The envelope bytes of a request body, per its Content-Encoding (identity, gzip, or br)."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    decoder = DECODERS.get(encoding)
    if decoder is None:
        raise SinkError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"unsupported Content-Encoding: {encoding}")
    try:
        data = decoder(body)
    except SinkError:
        raise
    except Exception as exc:  # zlib.error, brotli.error, ...: whatever the decoder says, the body is bad
        raise SinkError(HTTPStatus.BAD_REQUEST, f"cannot decode {encoding} body: {exc}") from exc
    if len(data) > MAX_DECODED_BYTES:
        raise SinkError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "decoded envelope too large")
    return data


def parse_auth(header: str | None, query: str) -> dict[str, str]:
    """The ``sentry_*`` pairs of an ``X-Sentry-Auth`` header, or of the query string (browser SDKs use that)."""
    if header:
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() != "sentry":
            return {}
        return dict(AUTH_PAIR.findall(rest))
    params = parse_qs(query)
    return {key: values[0] for key, values in params.items() if key.startswith("sentry_")}


def check_auth(auth: dict[str, str], expected_key: str | None) -> None:
    """Raise 401 without credentials and 403 for a key other than the expected one (any key when none is set)."""
    key = auth.get("sentry_key")
    if not key:
        raise SinkError(HTTPStatus.UNAUTHORIZED, "missing X-Sentry-Auth sentry_key")
    if expected_key is not None and key != expected_key:
        raise SinkError(HTTPStatus.FORBIDDEN, "invalid sentry_key")


def _json_line(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise SinkError(HTTPStatus.BAD_REQUEST, f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SinkError(HTTPStatus.BAD_REQUEST, f"{what} is not a JSON object")
    return value


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """Split an envelope into its header and its (item header, payload) pairs.

    A payload is ``length`` bytes when the item header gives a length, else the rest of its line.
    """
    header_line, _, rest = data.partition(b"\n")
    header = _json_line(header_line, "envelope header")
    items: list[tuple[dict[str, Any], bytes]] = []
    pos = 0
    while pos < len(rest):
        end = rest.find(b"\n", pos)
        line = rest[pos:] if end < 0 else rest[pos:end]
        pos = len(rest) if end < 0 else end + 1
        if not line.strip():
            continue  # blank lines between items and a trailing newline are allowed
        item_header = _json_line(line, "item header")
        length = item_header.get("length")
        if isinstance(length, int):
            if length < 0 or pos + length > len(rest):
                raise SinkError(HTTPStatus.BAD_REQUEST, "item length runs past the end of the envelope")
            payload = rest[pos : pos + length]
            pos += length
            if rest[pos : pos + 1] == b"\n":
                pos += 1
        else:
            end = rest.find(b"\n", pos)
            payload = rest[pos:] if end < 0 else rest[pos:end]
            pos = len(rest) if end < 0 else end + 1
        items.append((item_header, payload))
    return header, items


def event_title(payload: dict[str, Any], item_type: str) -> str:
    """What Sentry would show as the issue title: the last exception, else the message, else the transaction."""
    exceptions = (payload.get("exception") or {}).get("values") or []
    if exceptions:
        last = exceptions[-1]
        return f"{last.get('type', 'Error')}: {last.get('value', '')}".rstrip(": ")
    for field in (payload.get("message"), payload.get("logentry")):
        # A message is a string or a {"formatted": ..., "message": ...} object.
        message = field.get("formatted") or field.get("message") if isinstance(field, dict) else field
        if isinstance(message, str) and message:
            return message
    return str(payload.get("transaction") or f"<{item_type}>")


def event_trace_id(payload: dict[str, Any], envelope_header: dict[str, Any]) -> str | None:
    """The trace id of the event (its trace context), else the envelope's dynamic sampling context."""
    trace_context = (payload.get("contexts") or {}).get("trace") or {}
    trace_id = trace_context.get("trace_id") or (envelope_header.get("trace") or {}).get("trace_id")
    return str(trace_id) if trace_id else None


def to_events(project_id: str, data: bytes, now: float) -> list[StoredEvent]:
    """The storable events of one decoded envelope."""
    header, items = parse_envelope(data)
    events: list[StoredEvent] = []
    for item_header, payload_bytes in items:
        item_type = str(item_header.get("type", ""))
        if item_type not in STORED_TYPES:
            continue
        payload = _json_line(payload_bytes, f"{item_type} payload")
        events.append(
            StoredEvent(
                event_id=str(payload.get("event_id") or header.get("event_id") or ""),
                project_id=project_id,
                type=item_type,
                title=event_title(payload, item_type),
                level=str(payload.get("level") or ("info" if item_type == "transaction" else "error")),
                trace_id=event_trace_id(payload, header),
                received_at=now,
                payload=payload,
            )
        )
    return events


def ingest(
    target: str,
    auth_header: str | None,
    content_encoding: str | None,
    read_body: Callable[[], bytes],
    expected_key: str | None,
) -> list[StoredEvent]:
    """The events of one ``POST target``, or the SinkError Sentry would answer (the body is read only once the
    path and the key are right)."""
    url = urlsplit(target)
    match = ENVELOPE_PATH.match(url.path)
    if match is None:
        raise SinkError(HTTPStatus.NOT_FOUND, "not found")
    check_auth(parse_auth(auth_header, url.query), expected_key)
    return to_events(match["project"], decode_body(read_body(), content_encoding), time.time())


class EventStore:
    """The latest events, bounded; safe to use from the server's request threads."""

    def __init__(self, max_events: int) -> None:
        self._events: deque[StoredEvent] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def add(self, events: Sequence[StoredEvent]) -> None:
        with self._lock:
            self._events.extend(events)

    def list(self, trace_id: str | None = None, limit: int | None = None) -> list[StoredEvent]:
        """Newest first, optionally only those of one trace."""
        with self._lock:
            newest_first = list(reversed(self._events))
        if trace_id:
            newest_first = [event for event in newest_first if event.trace_id == trace_id.lower()]
        return newest_first[:limit] if limit is not None else newest_first

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


def render_index(events: Sequence[StoredEvent]) -> str:
    """A small HTML page listing the events (the lab's "Sentry" UI)."""
    rows = "\n".join(
        "<tr><td>{time}</td><td>{type}</td><td>{level}</td><td>{title}</td><td><code>{trace}</code></td></tr>".format(
            time=html.escape(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.received_at))),
            type=html.escape(event.type),
            level=html.escape(event.level),
            title=html.escape(event.title),
            trace=html.escape(event.trace_id or "-"),
        )
        for event in events
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Sentry sink</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style></head>
<body><h1>Sentry sink</h1><p>{len(events)} event(s), newest first. JSON: <a href="/api/events">/api/events</a>
(<code>?trace_id=</code> to filter).</p>
<table><tr><th>received (UTC)</th><th>type</th><th>level</th><th>title</th><th>trace id</th></tr>
{rows}
</table></body></html>
"""


class SinkHandler(BaseHTTPRequestHandler):
    """Routes one request; the store and the expected key live on the server."""

    server: SinkServer
    server_version = "sentry-sink/1"
    # Keep-alive and no Nagle, as Sentry's ingestion answers: with Nagle on, a kept-alive client waited 40 ms
    # (its delayed ACK) for every response body written after its headers (bench/sentry_storm.py).
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        try:
            events = ingest(
                self.path,
                self.headers.get("X-Sentry-Auth"),
                self.headers.get("Content-Encoding"),
                self._read_body,
                self.server.expected_key,
            )
        except SinkError as exc:
            self.close_connection = True  # the body may be unread: this connection cannot carry another request
            self._send_json(exc.status, {"detail": exc.detail})
            return
        self.server.store.add(events)
        self._send_json(HTTPStatus.OK, {"id": events[0].event_id if events else None})

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            self._send_json(HTTPStatus.OK, {"status": "ok", "events": len(self.server.store)})
        elif url.path == "/api/events":
            params = parse_qs(url.query)
            trace_id, limit = params.get("trace_id", [""])[0], params.get("limit", [""])[0]
            events = self.server.store.list(trace_id or None, int(limit) if limit.isdigit() else None)
            self._send_json(HTTPStatus.OK, [asdict(event) for event in events])
        elif url.path == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", render_index(self.server.store.list()).encode())
        else:
            self._send_json(HTTPStatus.NOT_FOUND, {"detail": "not found"})

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise SinkError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "envelope too large")
        return self.rfile.read(length)

    def _send_json(self, status: HTTPStatus, value: object) -> None:
        self._send(status, "application/json", json.dumps(value).encode())

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.access_log:
            super().log_message(format, *args)


class SinkServer(ThreadingHTTPServer):
    """The HTTP server, carrying the event store and the expected public key."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: EventStore, expected_key: str | None, access_log: bool) -> None:
        super().__init__(address, SinkHandler)
        self.store = store
        self.expected_key = expected_key
        self.access_log = access_log


class SentrySink:
    """The sink on a background thread, for tests: ``with SentrySink(key="k") as sink: sink.dsn``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        key: str | None = "public",
        project_id: int = 1,
        max_events: int = 1000,
        access_log: bool = False,
    ) -> None:
        self.key = key
        self.project_id = project_id
        self.store = EventStore(max_events)
        self.server = SinkServer((host, port), self.store, key, access_log)
        # A short poll interval, so stop() (server.shutdown) returns in milliseconds rather than half a second.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, name="sentry-sink", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def dsn(self) -> str:
        """The DSN an SDK needs to send here (the key is the one this sink expects, or any when it expects none)."""
        return self.url.replace("http://", f"http://{self.key or 'public'}@", 1) + f"/{self.project_id}"

    def events(self, trace_id: str | None = None) -> list[StoredEvent]:
        return self.store.list(trace_id)

    def start(self) -> SentrySink:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SentrySink:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def healthcheck(port: int, timeout: float = 2.0) -> int:
    """Exit status for a container healthcheck: 0 when /healthz answers 200 (the image has no curl)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as response:
            return 0 if response.status == HTTPStatus.OK else 1
    except OSError:
        return 1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default=os.environ.get("SINK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SINK_PORT", "8969")))
    parser.add_argument(
        "--key",
        default=os.environ.get("SINK_PUBLIC_KEY") or None,
        help="the DSN public key to accept (default: any key, but X-Sentry-Auth is still required)",
    )
    parser.add_argument("--max-events", type=int, default=int(os.environ.get("SINK_MAX_EVENTS", "1000")))
    parser.add_argument("--healthcheck", action="store_true", help="probe a running sink on --port and exit")
    return parser.parse_args(argv)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.healthcheck:
        return healthcheck(args.port)
    server = SinkServer((args.host, args.port), EventStore(args.max_events), args.key, access_log=True)
    # As a container's PID 1 Python ignores SIGTERM unless it handles it; exit at once instead of being killed later.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    brotli_state = "on" if BROTLI_DECOMPRESS else "off (415 for br)"
    print(f"sentry-sink on http://{args.host}:{args.port} (brotli {brotli_state})", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
