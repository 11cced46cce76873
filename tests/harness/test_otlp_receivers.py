"""The OTLP receivers speak the collector's protocol in every mode, seen by grpcio and httpx clients."""

from __future__ import annotations

import gzip
from concurrent.futures import ThreadPoolExecutor

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from harness.backends import Mode
from harness.otlp_receivers import GRPC_SERVICE, OtlpGrpcReceiver, OtlpHttpReceiver

TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def _request(*names: str) -> ExportTraceServiceRequest:
    spans = [
        Span(
            name=name,
            trace_id=TRACE_ID,
            span_id=bytes([i + 1] * 8),
            kind=Span.SpanKind.SPAN_KIND_SERVER,
            attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/links/{slug}"))],
        )
        for i, name in enumerate(names)
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def _stub(channel: grpc.Channel) -> grpc.UnaryUnaryMultiCallable[ExportTraceServiceRequest, ExportTraceServiceResponse]:
    return channel.unary_unary(
        f"/{GRPC_SERVICE}/Export",
        request_serializer=ExportTraceServiceRequest.SerializeToString,
        response_deserializer=ExportTraceServiceResponse.FromString,
    )


def _export(receiver: OtlpGrpcReceiver, request: ExportTraceServiceRequest, timeout: float = 10.0) -> None:
    with grpc.insecure_channel(f"{receiver.host}:{receiver.port}") as channel:
        _stub(channel)(request, timeout=timeout, metadata=(("x-tenant", "t1"),))


def test_grpc_ok_decodes_and_keeps_the_spans() -> None:
    with OtlpGrpcReceiver() as receiver:
        _export(receiver, _request("GET /links/{slug}"))
        [span] = receiver.spans("GET /links/{slug}")
    assert (span.trace_id, span.kind, span.attributes) == (TRACE_ID.hex(), "SERVER", {"http.route": "/links/{slug}"})
    [export] = receiver.exports()
    assert (export.span_count, export.mode, export.headers["x-tenant"]) == (1, "ok", "t1")


@pytest.mark.parametrize(("mode", "code"), [("500", grpc.StatusCode.INTERNAL), ("503", grpc.StatusCode.UNAVAILABLE)])
def test_grpc_failing_modes_abort_with_the_collectors_status(mode: Mode, code: grpc.StatusCode) -> None:
    with OtlpGrpcReceiver(mode) as receiver:
        with pytest.raises(grpc.RpcError) as failed:
            _export(receiver, _request("a"))
        assert failed.value.code() == code
        assert (receiver.all_spans(), [e.mode for e in receiver.exports()]) == ([], [mode])


def test_grpc_hang_holds_the_call_until_it_times_out() -> None:
    with OtlpGrpcReceiver("hang") as receiver:
        with pytest.raises(grpc.RpcError) as failed:
            _export(receiver, _request("a"), timeout=0.5)
        assert failed.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert receiver.all_spans() == []


def test_grpc_leaving_hang_for_ok_answers_the_held_call_and_keeps_its_spans() -> None:
    with OtlpGrpcReceiver("hang") as receiver, ThreadPoolExecutor(1) as pool:
        held = pool.submit(_export, receiver, _request("held"))
        receiver.wait_exports(1)
        assert not held.done()
        receiver.mode = "ok"
        held.result(10)
        assert [s.name for s in receiver.all_spans()] == ["held"]


def test_grpc_refuse_at_run_time_and_back_on_the_same_port() -> None:
    with OtlpGrpcReceiver() as receiver:
        port = receiver.port
        receiver.mode = "refuse"
        with pytest.raises(grpc.RpcError) as failed:
            _export(receiver, _request("a"), timeout=2)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        receiver.mode = "ok"
        _export(receiver, _request("b"))
        assert (receiver.port, [s.name for s in receiver.all_spans()]) == (port, ["b"])


def test_grpc_keep_false_only_counts_the_spans() -> None:
    counted: list[int] = []
    with OtlpGrpcReceiver(keep=False, on_spans=counted.append) as receiver:
        _export(receiver, _request("a", "b"))
        assert (counted, receiver.all_spans(), receiver.exports()) == ([2], [], [])


def test_http_ok_answers_an_export_response_and_decodes_gzip() -> None:
    with OtlpHttpReceiver() as receiver:
        body = gzip.compress(_request("a").SerializeToString())
        response = httpx.post(receiver.traces_endpoint, content=body, headers={**PROTOBUF, "Content-Encoding": "gzip"})
        assert response.status_code == 200
        assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
        assert [(e.content_encoding, e.span_count) for e in receiver.exports()] == [("gzip", 1)]
        assert [s.name for s in receiver.all_spans()] == ["a"]


@pytest.mark.parametrize(("headers", "status"), [({"Content-Type": "application/json"}, 415), (PROTOBUF, 400)])
def test_http_rejects_what_the_collector_rejects(headers: dict[str, str], status: int) -> None:
    with OtlpHttpReceiver() as receiver:
        response = httpx.post(receiver.traces_endpoint, content=b"\xff not protobuf", headers=headers)
        assert response.status_code == status
        assert receiver.all_spans() == []


@pytest.mark.parametrize("mode", ["500", "503"])
def test_http_failing_modes_answer_that_status(mode: Mode) -> None:
    with OtlpHttpReceiver(mode) as receiver:
        response = httpx.post(receiver.traces_endpoint, content=_request("a").SerializeToString(), headers=PROTOBUF)
        assert response.status_code == int(mode)
        assert [e.mode for e in receiver.exports()] == [mode]


def test_http_answers_404_off_the_traces_path() -> None:
    with OtlpHttpReceiver() as receiver:
        response = httpx.post(f"{receiver.endpoint}/v1/metrics", content=b"", headers=PROTOBUF)
        assert (response.status_code, receiver.exports()) == (404, [])


def test_grpc_respond_scripts_a_partial_success_or_a_status() -> None:
    script: list[ExportTraceServiceResponse | grpc.StatusCode] = [
        ExportTraceServiceResponse(partial_success=ExportTracePartialSuccess(rejected_spans=1)),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    ]
    with OtlpGrpcReceiver(respond=lambda _request: script.pop(0)) as receiver:
        with grpc.insecure_channel(f"{receiver.host}:{receiver.port}") as channel:
            call = _stub(channel)
            assert call(_request("a", "b"), timeout=10).partial_success.rejected_spans == 1
            with pytest.raises(grpc.RpcError) as failed:
                call(_request("c"), timeout=10)
        assert failed.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert [s.name for s in receiver.all_spans()] == ["a", "b"]
