"""svc/export.py on its own: the OTLP senders against the harness's fake backends on loopback (a grpcio TraceService,
an HTTP/1.1 endpoint), and the batch exporter's queue and thread: batching, drops counted by reason, retries,
bounded shutdown, and its failure line (one per interval)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import sampling

from harness.backends import RefusingPort
from harness.http_backend import HttpBackend, Reply
from harness.otlp_receivers import OtlpGrpcReceiver, decode_request
from harness.polling import wait_for
from svc.export import MAX_REQUEST_BYTES, BatchExporter, GrpcSender, HttpSender, Sender, SendError
from svc.otlp import encode_spans_bytes
from svc.spans import RecordedSpan, Recorder
from svc.throttle import LineThrottle

Drops = list[tuple[int, str]]
Script = deque[ExportTraceServiceResponse | grpc.StatusCode]
StartExporter = Callable[..., BatchExporter]


class _Kept:
    """A span sink keeping what ended, to build request bodies from real recorded spans."""

    def __init__(self) -> None:
        self.spans: list[RecordedSpan] = []

    def on_end(self, span: RecordedSpan) -> None:
        self.spans.append(span)


def _recorded(*names: str, attributes: dict[str, Any] | None = None) -> list[RecordedSpan]:
    kept = _Kept()
    tracer = Recorder(Resource.create({"service.name": "unit"}), sampling.ALWAYS_ON, [kept]).get_tracer("test")
    for name in names:
        tracer.start_span(name, attributes=attributes).end()
    return kept.spans


def _body(*names: str) -> bytes:
    return encode_spans_bytes(_recorded(*names))


@pytest.fixture
def script() -> Script:
    return deque()


@pytest.fixture
def collector(script: Script) -> Iterator[OtlpGrpcReceiver]:
    """An OTLP/gRPC receiver answering each export with the next of `script`, then with plain success."""
    with OtlpGrpcReceiver(respond=lambda _request: script.popleft() if script else ExportTraceServiceResponse()) as rx:
        yield rx


def _rejecting(count: int) -> ExportTraceServiceResponse:
    return ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(rejected_spans=count))


def _attempts(collector: OtlpGrpcReceiver) -> list[int]:
    """The span count of each export attempt the collector saw, answered or not."""
    return [export.span_count for export in collector.exports()]


def _names(collector: OtlpGrpcReceiver) -> list[str]:
    """The names of the spans the collector accepted, in arrival order."""
    return [span.name for span in collector.all_spans()]


@pytest.fixture
def drops() -> Drops:
    return []


@pytest.fixture
def start_exporter(collector: OtlpGrpcReceiver, drops: Drops) -> Iterator[StartExporter]:
    """start_exporter(sender=None, **options) -> a BatchExporter to `collector` over gRPC (unless another sender
    is given), counting its drops into `drops`; shut down after the test."""
    started: list[BatchExporter] = []

    def start(sender: Sender | None = None, **options: Any) -> BatchExporter:
        settings: dict[str, Any] = {"max_queue": 64, "batch_size": 8, "delay": 60.0, "timeout": 5.0, **options}
        chosen = sender or GrpcSender(collector.endpoint, ())
        started.append(BatchExporter(chosen, lambda n, why: drops.append((n, why)), **settings))
        return started[-1]

    yield start
    collector.mode = "ok"
    for exporter in started:
        exporter.shutdown(5)


def _end(exporter: BatchExporter, *names: str, attributes: dict[str, Any] | None = None) -> None:
    for span in _recorded(*names, attributes=attributes):
        exporter.on_end(span)


def _send_once(sender: Sender, *names: str, timeout: float = 5.0) -> int:
    """Send one request of spans with these names, then close the sender; the count the peer rejected."""
    try:
        return sender.send(_body(*names), timeout=timeout)
    finally:
        sender.close()


def _failure(sender: Sender, timeout: float = 5.0) -> SendError:
    """The SendError one request through sender fails with."""
    with pytest.raises(SendError) as failed:
        _send_once(sender, "a", timeout=timeout)
    return failed.value


# GrpcSender


def test_grpc_sender_sends_the_body_as_one_export_request_with_lowercased_headers(
    collector: OtlpGrpcReceiver,
) -> None:
    assert _send_once(GrpcSender(collector.endpoint, [("X-Tenant", "acme")]), "a", "b") == 0
    assert (_attempts(collector), _names(collector)) == ([2], ["a", "b"])
    assert collector.exports()[0].headers["x-tenant"] == "acme"


def test_grpc_sender_returns_the_count_a_partial_success_rejected(collector: OtlpGrpcReceiver, script: Script) -> None:
    script.append(_rejecting(2))
    assert _send_once(GrpcSender(collector.endpoint, ()), "a", "b", "c") == 2


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
        (grpc.StatusCode.PERMISSION_DENIED, False),
    ],
)
def test_grpc_sender_fails_with_the_status_and_retries_only_what_the_spec_calls_transient(
    collector: OtlpGrpcReceiver, script: Script, code: grpc.StatusCode, retryable: bool
) -> None:
    script.append(code)
    error = _failure(GrpcSender(collector.endpoint, ()))
    assert (str(error), error.retryable) == (f"gRPC {code.name}: scripted {code.name}", retryable)


def test_grpc_sender_to_a_refused_port_fails_retryable() -> None:
    with RefusingPort() as port:
        error = _failure(GrpcSender(port.url, ()))
    assert str(error).startswith("gRPC UNAVAILABLE")
    assert error.retryable


def test_grpc_sender_gives_up_at_its_timeout_on_a_collector_that_does_not_answer_retryable(
    collector: OtlpGrpcReceiver,
) -> None:
    collector.mode = "hang"
    error = _failure(GrpcSender(collector.endpoint, ()), timeout=0.2)
    assert str(error).startswith("gRPC DEADLINE_EXCEEDED")
    assert error.retryable


# HttpSender


def test_http_sender_posts_protobuf_with_the_configured_headers(endpoint: HttpBackend) -> None:
    assert _send_once(HttpSender(f"{endpoint.url}/v1/traces", [("X-Tenant", "acme")]), "a") == 0
    [request] = endpoint.requests()
    assert (request.path, request.headers["content-type"]) == ("/v1/traces", "application/x-protobuf")
    assert request.headers["x-tenant"] == "acme"
    assert [span.name for span in decode_request(ExportTraceServiceRequest.FromString(request.body))] == ["a"]


def test_http_sender_returns_the_count_a_partial_success_rejected(endpoint: HttpBackend, replies: deque[Reply]) -> None:
    answer = _rejecting(1)
    replies.append(Reply(200, answer.SerializeToString()))
    assert _send_once(HttpSender(f"{endpoint.url}/v1/traces", ()), "a", "b") == 1


def test_http_sender_takes_a_200_whose_body_is_not_a_response_as_delivered(
    endpoint: HttpBackend, replies: deque[Reply]
) -> None:
    replies.append(Reply(200, b"\xff\xff not protobuf"))
    assert _send_once(HttpSender(f"{endpoint.url}/v1/traces", ()), "a") == 0


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (502, True), (503, True), (504, True), (400, False), (500, False)]
)
def test_http_sender_fails_a_non_2xx_and_retries_only_what_the_spec_calls_transient(
    endpoint: HttpBackend, status: int, retryable: bool, replies: deque[Reply]
) -> None:
    replies.append(Reply(status, b""))
    error = _failure(HttpSender(f"{endpoint.url}/v1/traces", ()))
    assert (str(error), error.retryable) == (f"HTTP {status}", retryable)


def test_http_sender_passes_on_the_servers_retry_after(endpoint: HttpBackend, replies: deque[Reply]) -> None:
    replies.append(Reply(503, b"", {"Retry-After": "3"}))
    assert _failure(HttpSender(f"{endpoint.url}/v1/traces", ())).retry_after == 3.0


def test_http_sender_to_a_refused_port_fails_retryable() -> None:
    with RefusingPort() as port:
        error = _failure(HttpSender(f"{port.url}/v1/traces", ()))
    assert "ConnectionRefusedError" in str(error)
    assert error.retryable


def test_http_sender_gives_up_at_its_timeout_on_an_endpoint_that_does_not_answer_retryable(
    endpoint: HttpBackend,
) -> None:
    endpoint.mode = "hang"
    error = _failure(HttpSender(f"{endpoint.url}/v1/traces", ()), timeout=0.2)
    assert "timed out" in str(error)
    assert error.retryable


# BatchExporter


def test_a_full_batch_goes_out_without_waiting_for_the_delay(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver
) -> None:
    exporter = start_exporter(batch_size=4, delay=60.0)
    _end(exporter, "a", "b", "c", "d")
    wait_for(lambda: _names(collector) == ["a", "b", "c", "d"], timeout=10, what="the full batch")
    assert _attempts(collector) == [4]


def test_fewer_spans_than_a_batch_go_out_after_the_delay(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver
) -> None:
    exporter = start_exporter(batch_size=8, delay=0.2)
    _end(exporter, "a", "b")
    wait_for(lambda: _names(collector) == ["a", "b"], timeout=10, what="the partial batch after the delay")


def test_flush_sends_everything_queued_in_batches_of_at_most_the_batch_size(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops
) -> None:
    exporter = start_exporter(batch_size=4, delay=60.0)
    names = [f"s{n}" for n in range(10)]
    _end(exporter, *names)
    assert exporter.force_flush(10)
    assert _names(collector) == names
    assert max(_attempts(collector)) <= 4
    assert drops == []


def test_spans_beyond_a_full_queue_are_dropped_and_counted_as_queue_full(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops
) -> None:
    exporter = start_exporter(max_queue=4, batch_size=1)
    collector.mode = "hang"
    _end(exporter, "in-flight")
    wait_for(lambda: len(_attempts(collector)) == 1, timeout=10, what="the first export held by the collector")
    _end(exporter, "q1", "q2", "q3", "q4", "over1", "over2")
    assert drops == [(1, "queue_full"), (1, "queue_full")]
    collector.mode = "ok"
    assert exporter.force_flush(10)
    assert _names(collector) == ["in-flight", "q1", "q2", "q3", "q4"]


def test_a_transient_failure_is_retried_until_the_batch_arrives(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops, script: Script
) -> None:
    script.append(grpc.StatusCode.UNAVAILABLE)
    exporter = start_exporter()
    _end(exporter, "a")
    assert exporter.force_flush(10)
    assert (_attempts(collector), _names(collector)) == ([1, 1], ["a"])
    assert drops == []


def test_a_permanent_failure_drops_the_batch_at_once_as_export_failed(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops, script: Script
) -> None:
    script.append(grpc.StatusCode.INVALID_ARGUMENT)
    exporter = start_exporter()
    _end(exporter, "a", "b")
    assert exporter.force_flush(10)
    assert (_attempts(collector), _names(collector)) == ([2], [])
    assert drops == [(2, "export_failed")]


def test_spans_the_collector_rejects_are_counted_as_rejected(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops, script: Script
) -> None:
    script.append(_rejecting(1))
    exporter = start_exporter()
    _end(exporter, "a", "b", "c")
    assert exporter.force_flush(10)
    assert drops == [(1, "rejected")]


def test_a_batch_over_the_request_limit_is_split_and_a_span_too_large_alone_is_dropped(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops
) -> None:
    exporter = start_exporter(batch_size=3)
    _end(exporter, "small-1")
    _end(exporter, "huge", attributes={"blob": "x" * (MAX_REQUEST_BYTES + 1)})
    _end(exporter, "small-2")
    assert exporter.force_flush(10)
    assert (_attempts(collector), _names(collector)) == ([1, 1], ["small-1", "small-2"])
    assert drops == [(1, "too_large")]


def test_a_sender_that_raises_costs_its_batch_not_the_export_thread(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops
) -> None:
    class Broken:
        """A Sender with a bug on its first send: anything but SendError."""

        def __init__(self) -> None:
            self.inner = GrpcSender(collector.endpoint, ())
            self.calls = 0

        def send(self, body: bytes, timeout: float) -> int:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("sender bug")
            return self.inner.send(body, timeout)

        def close(self) -> None:
            self.inner.close()

    exporter = start_exporter(Broken())
    _end(exporter, "lost")
    assert exporter.force_flush(10)
    _end(exporter, "kept")
    assert exporter.force_flush(10)
    assert drops == [(1, "export_failed")]
    assert _names(collector) == ["kept"]


def test_shutdown_exports_what_is_queued_first(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, drops: Drops
) -> None:
    exporter = start_exporter()
    _end(exporter, "a", "b")
    assert exporter.shutdown(5)
    assert _names(collector) == ["a", "b"]
    assert drops == []


def test_shutdown_tries_each_batch_once_against_a_dead_collector_and_counts_it(
    start_exporter: StartExporter, drops: Drops
) -> None:
    with RefusingPort() as port:
        # A 30 s export deadline: while running, the exporter would keep retrying a refused connection.
        exporter = start_exporter(GrpcSender(port.url, ()), batch_size=2, timeout=30.0)
        _end(exporter, "a", "b", "c")
        assert exporter.shutdown(10)
    assert sum(n for n, _ in drops) == 3
    assert {why for _, why in drops} == {"export_failed"}


def test_shutdown_returns_at_its_bound_while_the_collector_hangs_and_says_what_it_left(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    exporter = start_exporter(batch_size=1, timeout=30.0)
    collector.mode = "hang"
    _end(exporter, "in-flight")
    wait_for(lambda: len(_attempts(collector)) == 1, timeout=10, what="the export held by the collector")
    _end(exporter, "left-1", "left-2")
    assert not exporter.shutdown(0.3)
    assert "span export did not finish within 0.3 s; 2 queued spans are dropped" in caplog.text


def test_export_failures_get_one_line_per_interval(
    start_exporter: StartExporter, collector: OtlpGrpcReceiver, caplog: pytest.LogCaptureFixture, script: Script
) -> None:
    now = [0.0]
    exporter = start_exporter(failure_lines=LineThrottle(60.0, clock=lambda: now[0]))
    caplog.set_level(logging.WARNING, "svc.export")
    script.extend([grpc.StatusCode.INVALID_ARGUMENT] * 3)
    for name, at in (("first", 0.0), ("within", 59.0), ("next", 60.0)):
        now[0] = at
        _end(exporter, name)
        assert exporter.force_flush(10)
    lines = [r.getMessage() for r in caplog.records if r.name == "svc.export"]
    line = "span export failed (export_failed): gRPC INVALID_ARGUMENT: scripted INVALID_ARGUMENT"
    assert lines == [line, line]
