"""Span export: a bounded queue drained by one thread, sending OTLP requests over gRPC or HTTP (protobuf).

svc's own implementation of the OTLP exporter protocol (opentelemetry-proto's messages, svc.otlp's encoder), not
the SDK's exporters: those keep a failed export's error in a reference cycle (error -> traceback -> frame ->
result -> error) that only a full collection frees, holding the GIL for 30-137 ms (issue 14). Here an error
becomes a string inside its `except` block, so a refusing collector leaves nothing for the collector to find.
Retries follow the spec: transient failures (gRPC UNAVAILABLE and friends, HTTP 429/502/503/504, a refused or
reset connection) are retried with exponential backoff until the export's deadline; anything else fails the
batch at once. Every span that does not reach the collector is counted with its reason.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from svc.otlp import SpanData, encode_spans_bytes
from svc.posting import KeepAlivePoster, PostFailedError
from svc.throttle import LineThrottle

__all__ = ["BatchExporter", "GrpcSender", "HttpSender", "OnDrop", "SendError", "Sender", "Tls"]

log = logging.getLogger("svc.export")

OnDrop = Callable[[int, str], None]
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
# The OpenTelemetry Collector's default gRPC receive limit; a larger batch is split in halves until it fits.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# The spec's retryable gRPC codes (RESOURCE_EXHAUSTED only with RetryInfo, which svc does not parse).
RETRYABLE_GRPC = frozenset(
    {
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
RETRYABLE_HTTP = frozenset({429, 502, 503, 504})
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0
FAILURE_LOG_INTERVAL = 60.0


class SendError(Exception):
    """One failed send; retryable or not, with the cause as text (never the original exception object)."""

    def __init__(self, cause: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(cause)
        self.retryable = retryable
        self.retry_after = retry_after


class Sender(Protocol):
    """Sends one encoded ExportTraceServiceRequest; returns the count of spans the collector rejected."""

    def send(self, body: bytes, timeout: float) -> int:
        """Raise SendError when the request fails."""

    def close(self) -> None:
        """Release connections."""


def _rejected(response: ExportTraceServiceResponse) -> int:
    return int(response.partial_success.rejected_spans) if response.HasField("partial_success") else 0


@dataclass(frozen=True, slots=True)
class Tls:
    """PEM files for an https endpoint (OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE, _CLIENT_KEY)."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials: the given CA (else the system's), and the client pair for mTLS if given."""
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file),
            private_key=_read(self.key_file),
            certificate_chain=_read(self.cert_file),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """The same for http.client."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as pem:
        return pem.read()


class GrpcSender:
    """OTLP/gRPC through grpcio's public API: the request goes out as the bytes it is given."""

    def __init__(self, endpoint: str, headers: Sequence[tuple[str, str]], tls: Tls | None = None) -> None:
        scheme, _, target = endpoint.rpartition("://")
        target = target.rstrip("/")
        if scheme == "https":
            self._channel = grpc.secure_channel(target, (tls or Tls()).grpc_credentials())
        else:
            self._channel = grpc.insecure_channel(target)
        # request_serializer=None: grpcio sends the request unserialised (bytes as they are).
        self._export: grpc.UnaryUnaryMultiCallable[bytes, ExportTraceServiceResponse] = self._channel.unary_unary(
            EXPORT_METHOD, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString
        )
        self._metadata = tuple((k.lower(), v) for k, v in headers)

    def send(self, body: bytes, timeout: float) -> int:
        try:
            response = self._export(body, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise SendError(f"gRPC {code.name}: {details}", retryable=code in RETRYABLE_GRPC) from None
        return _rejected(response)

    def close(self) -> None:
        self._channel.close()


class HttpSender:
    """OTLP/HTTP with protobuf bodies over one keep-alive connection, uncompressed as the SDK's default."""

    def __init__(self, endpoint: str, headers: Sequence[tuple[str, str]], tls: Tls | None = None) -> None:
        context = (tls or Tls()).ssl_context() if endpoint.startswith("https://") else None
        self._poster = KeepAlivePoster(endpoint, timeout=10.0, context=context)
        self._headers = {"Content-Type": "application/x-protobuf", **dict(headers)}

    def send(self, body: bytes, timeout: float) -> int:
        try:
            reply = self._poster.post(body, self._headers, timeout)
        except PostFailedError as error:
            raise SendError(str(error), retryable=True) from None
        if reply.status == 200:
            try:
                return _rejected(ExportTraceServiceResponse.FromString(reply.body))
            except Exception:  # a 200 with a body that is not a response: the spans arrived
                return 0
        retry_after = reply.headers.get("Retry-After")
        delay = float(retry_after) if retry_after and retry_after.isdigit() else None
        raise SendError(f"HTTP {reply.status}", retryable=reply.status in RETRYABLE_HTTP, retry_after=delay)

    def close(self) -> None:
        self._poster.close()


class BatchExporter:
    """The span sink: a bounded queue, one export thread, flush and shutdown bounded in time."""

    def __init__(
        self,
        sender: Sender,
        on_drop: OnDrop,
        *,
        max_queue: int,
        batch_size: int,
        delay: float,
        timeout: float,
        failure_lines: LineThrottle | None = None,
    ) -> None:
        self._sender = sender
        self._on_drop = on_drop
        self._max_queue = max_queue
        self._batch_size = batch_size
        self._delay = delay
        self._timeout = timeout
        self._queue: deque[SpanData] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._state = threading.Condition()
        self._busy = False
        # One failure line a minute, whatever the reason: a dead collector fails every batch.
        self._failure_lines = failure_lines or LineThrottle(FAILURE_LOG_INTERVAL)
        self._jitter = random.Random()
        self._thread = threading.Thread(target=self._run, name="svc-span-export", daemon=True)
        self._thread.start()

    def on_end(self, span: SpanData) -> None:
        """Queue one ended span (from any thread; deque appends are atomic); a full queue drops and counts it."""
        queue = self._queue
        if len(queue) >= self._max_queue:
            self._on_drop(1, "queue_full")
            return
        queue.append(span)
        if len(queue) == self._batch_size:
            self._wake.set()

    def force_flush(self, timeout: float = 30.0) -> bool:
        """Export everything queued now; False if that took longer than timeout."""
        self._wake.set()
        with self._state:
            return self._state.wait_for(lambda: not self._queue and not self._busy, timeout)

    def shutdown(self, timeout: float) -> bool:
        """Export what is queued (one attempt per batch), then stop; False if that took longer than timeout."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            left = len(self._queue)
            log.warning("span export did not finish within %.1f s; %d queued spans are dropped", timeout, left)
            return False
        self._sender.close()
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self._delay)
            self._wake.clear()
            with self._state:
                self._busy = True
            try:
                self._drain()
            finally:
                with self._state:
                    self._busy = False
                    self._state.notify_all()
            if self._stop.is_set():
                return

    def _drain(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
            self._export(batch)

    def _export(self, batch: list[SpanData]) -> None:
        try:
            body = encode_spans_bytes(batch)
        except Exception as error:
            self._failed(len(batch), "encode_failed", f"{type(error).__name__}: {error}")
            return
        if len(body) > MAX_REQUEST_BYTES:
            if len(batch) == 1:
                self._failed(1, "too_large", f"one span encodes to {len(body)} bytes")
                return
            half = len(batch) // 2
            self._export(batch[:half])
            self._export(batch[half:])
            return
        self._send(body, len(batch))

    def _send(self, body: bytes, count: int) -> None:
        """One request, retried while the failure is transient and the deadline allows."""
        deadline = time.monotonic() + self._timeout
        backoff = FIRST_BACKOFF
        while True:
            try:
                rejected = self._sender.send(body, max(deadline - time.monotonic(), 0.001))
            except SendError as error:
                delay = error.retry_after if error.retry_after is not None else backoff * self._jitter.uniform(0.8, 1.2)
                # Stopping: one attempt per batch, so a dead collector cannot hold the exit.
                give_up = not error.retryable or self._stop.is_set() or time.monotonic() + delay >= deadline
                if give_up or self._stop.wait(delay):
                    self._failed(count, "export_failed", str(error))
                    return
                backoff = min(backoff * 2, MAX_BACKOFF)
                continue
            except Exception as error:  # a sender bug must cost this batch, not the export thread
                self._failed(count, "export_failed", f"{type(error).__name__}: {error}")
                return
            if rejected:
                self._failed(rejected, "rejected", f"the collector rejected {rejected} of {count} spans")
            return

    def _failed(self, count: int, reason: str, cause: str) -> None:
        self._on_drop(count, reason)
        if self._failure_lines.admit("span export"):
            log.warning("span export failed (%s): %s", reason, cause)
