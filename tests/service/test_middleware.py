"""RequestTelemetryMiddleware on its own: a tiny app under it, its spans, registry samples and access lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar, Response, get
from litestar.params import FromPath
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from harness.traceresponse import parse_traceresponse
from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.logs import EcsJsonFormatter, configure_logging
from svc.middleware import RequestTelemetryMiddleware
from svc.telemetry import Telemetry
from tests.support.log_contract import contract_errors

BUILD = BuildInfo(version="test", commit=None, commit_time=None, dirty=None)
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


@get("/items/{item_id:str}", sync_to_thread=False)
def get_item(item_id: FromPath[str]) -> dict[str, str]:
    return {"id": item_id}


@get("/unavailable", sync_to_thread=False)
def unavailable() -> Response[dict[str, str]]:
    return Response({"detail": "down"}, status_code=503)


@get("/healthz", sync_to_thread=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def tiny_app() -> Litestar:
    return Litestar([get_item, unavailable, healthz], logging_config=None)


@dataclass
class Served:
    """One middleware over an app, and where its signals land."""

    app: ASGIApp
    telemetry: Telemetry
    spans: InMemorySpanExporter

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def sample(self, name: str, **labels: str) -> float | None:
        return self.telemetry.metrics.registry.get_sample_value(name, labels)

    def exemplar_trace_id(self, **labels: str) -> str | None:
        for family in self.telemetry.metrics.registry.collect():
            for sample in family.samples:
                if sample.name == "http_server_requests_total" and sample.labels == labels and sample.exemplar:
                    return sample.exemplar.labels["trace_id"]
        return None


def serve(app: ASGIApp | None = None, **config: Any) -> Served:
    """The middleware over app (the tiny Litestar app by default), its spans kept in memory."""
    spans = InMemorySpanExporter()
    telemetry = Telemetry.from_config(Config(**config), BUILD, [SimpleSpanProcessor(spans)])
    return Served(RequestTelemetryMiddleware(app or tiny_app(), telemetry), telemetry, spans)


def client_of(app: ASGIApp) -> httpx.AsyncClient:
    """An httpx client calling app in-process, from a fixed client address."""
    # httpx types an ASGI app's scope and messages as plain mappings, Litestar as TypedDicts: the same protocol.
    transport = httpx.ASGITransport(app=cast(Any, app), client=("192.0.2.7", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://svc.test")


def call(app: ASGIApp, path: str, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        async with client_of(app) as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


@contextmanager
def svc_logging() -> Iterator[io.StringIO]:
    """What svc's own JSON handler writes meanwhile: configure_logging's, alone on the root logger as in a run.

    pytest adds its capture handlers to the root logger at the start of each test phase (so not in a fixture);
    configure_logging removes them as it removes any handler, and they are put back after.
    """
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging(Config(), "test", stream)
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            handler.flush()
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


@contextmanager
def access_records() -> Iterator[list[logging.LogRecord]]:
    """Every LogRecord made for the svc.access logger meanwhile (through logging's public record factory)."""
    made: list[logging.LogRecord] = []
    factory = logging.getLogRecordFactory()

    def counting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if record.name == "svc.access":
            made.append(record)
        return record

    logging.setLogRecordFactory(counting)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(factory)


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["event.dataset"] == "svc.access"]


def call_logged(app: ASGIApp, path: str, **headers: str) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """call() with svc's logging configured; the response and the access lines it wrote."""
    with svc_logging() as stream:
        response = call(app, path, **headers)
    return response, access_lines(stream)


def test_a_request_gets_one_server_span_named_for_its_route_with_the_request_fields() -> None:
    served = serve()
    response = call(served.app, "/items/a1", **{"user-agent": "probe/1", "x-request-id": "req-1"})
    (span,) = served.finished()
    assert span.kind == SpanKind.SERVER
    assert span.name == "GET /items/{item_id}"
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "url.path": "/items/a1",
        "url.scheme": "http",
        "client.address": "192.0.2.7",
        "user_agent.original": "probe/1",
        "network.protocol.version": "1.1",
        "http.request.id": "req-1",
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "http.response.body.size": len(response.content),
    }


def test_the_span_the_metrics_and_the_access_line_describe_the_same_request() -> None:
    served = serve()
    response, (line,) = call_logged(served.app, "/items/a1", **{"x-request-id": "same-1"})
    (span,) = served.finished()
    parsed = parse_traceresponse(response.headers["traceresponse"])
    assert parsed is not None
    assert span.context is not None
    trace_id, span_id = f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"
    assert (parsed.trace_id, parsed.span_id) == (trace_id, span_id)
    assert (line["trace.id"], line["span.id"], line["http.request.id"]) == (trace_id, span_id, "same-1")
    labels = {"method": "GET", "route": "/items/{item_id}", "status_code": "200"}
    assert served.exemplar_trace_id(**labels) == trace_id
    assert served.sample("http_server_requests_total", **labels) == 1
    assert served.sample("http_server_response_size_bytes_sum", **labels) == len(response.content)
    assert line["http.response.body.bytes"] == len(response.content)
    assert line["http.route"] == "/items/{item_id}"
    assert served.sample("http_server_request_duration_seconds_sum", **labels) == line["event.duration"] / 1e9


def test_the_access_line_follows_the_log_contract() -> None:
    served = serve()
    _, (line,) = call_logged(served.app, "/items/a1")
    assert contract_errors(line) == []
    assert (line["log.level"], line["message"], line["log.logger"]) == ("info", "GET /items/a1 200", "svc.access")
    assert (line["client.address"], line["http.version"]) == ("192.0.2.7", "1.1")


def test_with_svc_handler_alone_the_access_line_is_written_without_a_log_record() -> None:
    served = serve()
    with svc_logging() as stream, access_records() as made:
        call(served.app, "/items/a1")
    assert made == []
    assert len(access_lines(stream)) == 1


def test_the_record_free_line_equals_the_line_logging_writes_for_the_same_request() -> None:
    served = serve(otel_disabled=True)  # no trace ids, which would differ between the two requests
    with svc_logging() as stream, access_records() as made:
        call(served.app, "/items/a1", **{"x-request-id": "twin"})
        # A second handler on the root logger: the record must now be made, and svc's handler formats it.
        listener = logging.StreamHandler(io.StringIO())
        listener.setFormatter(EcsJsonFormatter({}))
        logging.getLogger().addHandler(listener)
        call(served.app, "/items/a1", **{"x-request-id": "twin"})
    assert len(made) == 1
    fast, logged = access_lines(stream)
    for line in (fast, logged):
        del line["@timestamp"], line["event.duration"]
    assert list(fast.items()) == list(logged.items())


def test_a_listening_handler_such_as_caplog_gets_the_access_record(caplog: pytest.LogCaptureFixture) -> None:
    served = serve()
    with caplog.at_level(logging.INFO, logger="svc.access"):
        call(served.app, "/items/a1", **{"x-request-id": "seen"})
    (record,) = [r for r in caplog.records if r.name == "svc.access"]
    assert record.getMessage() == "GET /items/a1 200"
    assert record.__dict__["http.request.id"] == "seen"
    assert record.__dict__["http.route"] == "/items/{item_id}"


def test_a_5xx_response_is_an_error_span_and_an_error_line() -> None:
    served = serve()
    response, (line,) = call_logged(served.app, "/unavailable")
    assert response.status_code == 503
    (span,) = served.finished()
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "503"
    assert (line["log.level"], line["http.response.status_code"]) == ("error", 503)


async def _fails_before_responding(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("no response")


def test_an_app_that_raises_before_responding_is_recorded_as_a_500() -> None:
    served = serve(_fails_before_responding)
    with svc_logging() as stream, pytest.raises(RuntimeError, match="no response"):
        call(served.app, "/anything")
    (span,) = served.finished()
    assert (span.name, span.status.status_code) == ("GET", StatusCode.ERROR)
    assert served.sample("http_server_requests_total", method="GET", route="unmatched", status_code="500") == 1
    (line,) = access_lines(stream)
    assert (line["log.level"], line["http.route"], line["http.response.status_code"]) == ("error", "unmatched", 500)


def test_an_unmatched_path_keeps_the_method_as_span_name_and_the_unmatched_route() -> None:
    served = serve()
    assert call(served.app, "/no/such/path").status_code == 404
    (span,) = served.finished()
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes
    assert served.sample("http_server_requests_total", method="GET", route="unmatched", status_code="404") == 1


def test_a_callers_traceparent_makes_the_server_span_its_child() -> None:
    served = serve()
    response = call(served.app, "/items/a1", traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    (span,) = served.finished()
    assert span.parent is not None
    assert (f"{span.parent.trace_id:032x}", f"{span.parent.span_id:016x}") == (CALLER_TRACE, CALLER_SPAN)
    assert response.headers["traceresponse"].startswith(f"00-{CALLER_TRACE}-")


def test_probe_paths_get_no_span_and_no_traceresponse_but_an_access_line() -> None:
    served = serve()
    response, (line,) = call_logged(served.app, "/healthz")
    assert served.finished() == []
    assert "traceresponse" not in response.headers
    assert "trace.id" not in line
    assert line["http.request.id"] == response.headers["x-request-id"]


def test_with_the_sdk_disabled_no_header_or_line_carries_trace_ids() -> None:
    served = serve(otel_disabled=True)
    response, (line,) = call_logged(served.app, "/items/a1")
    assert "traceresponse" not in response.headers
    assert "trace.id" not in line
    assert "span.id" not in line


def test_an_unknown_method_is_labelled_other_everywhere() -> None:
    served = serve()

    async def go() -> None:
        async with client_of(served.app) as client:
            await client.request("BREW", "/items/a1")

    with svc_logging() as stream:
        asyncio.run(go())
    (span,) = served.finished()
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    (line,) = access_lines(stream)
    assert line["http.request.method"] == "_OTHER"
    assert served.sample("http_server_requests_total", method="_OTHER", route=line["http.route"], status_code="405")


def test_the_active_gauge_counts_a_request_while_it_is_served() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def waiting(scope: Scope, receive: Receive, send: Send) -> None:
        entered.set()
        await release.wait()
        start: HTTPResponseStartEvent = {"type": "http.response.start", "status": 204, "headers": ()}
        await send(start)
        body: HTTPResponseBodyEvent = {"type": "http.response.body", "body": b"", "more_body": False}
        await send(body)

    served = serve(waiting)

    async def go() -> tuple[float | None, float | None]:
        async with client_of(served.app) as client:
            request = asyncio.create_task(client.get("/wait"))
            await asyncio.wait_for(entered.wait(), 5)
            during = served.sample("http_server_active_requests", method="GET")
            release.set()
            await request
            return during, served.sample("http_server_active_requests", method="GET")

    assert asyncio.run(go()) == (1, 0)


def test_non_http_scopes_pass_through_with_no_signals() -> None:
    seen: list[str] = []

    async def lifespan_only(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    served = serve(lifespan_only)

    async def receive() -> Any:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        pass

    async def lifespan() -> None:
        await served.app(cast(Scope, {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}), receive, send)

    asyncio.run(lifespan())
    assert seen == ["lifespan"]
    assert served.finished() == []
    assert served.sample("http_server_active_requests", method="GET") is None
