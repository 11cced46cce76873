"""Traces: what a request's spans look like when they arrive at a real OTLP receiver, over gRPC and HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from harness.otlp_receivers import OtlpGrpcReceiver, OtlpHttpReceiver, ReceivedSpan
from harness.postgres import PostgresCluster
from harness.service import ServiceThread, base_env, service_thread
from harness.traceresponse import TraceResponse
from svc.buildinfo import read_build_info
from tests.telemetry.support import flush_spans, trace_response


@dataclass
class Exported:
    """What one service run exported over one OTLP protocol for: create a link, get it, get /version."""

    created: TraceResponse
    got: TraceResponse
    version: TraceResponse
    otlp: OtlpGrpcReceiver | OtlpHttpReceiver
    store: str  # the db.system.name its queries must carry

    def trace(self, ids: TraceResponse) -> list[ReceivedSpan]:
        return [s for s in self.otlp.all_spans() if s.trace_id == ids.trace_id]

    def server(self, ids: TraceResponse) -> ReceivedSpan:
        [span] = [s for s in self.trace(ids) if s.kind == "SERVER"]
        return span


def _served(
    client: httpx.Client, otlp: OtlpGrpcReceiver, url: str, status: int, headers: dict[str, str] | None = None
) -> tuple[TraceResponse, ReceivedSpan]:
    """GET url expecting status: the response's traceresponse ids and the server span they name, once exported."""
    response = client.get(url, headers=headers)
    assert response.status_code == status
    ids = trace_response(response)
    [span] = otlp.spans(trace_id=ids.trace_id, where=lambda s: s.kind == "SERVER")
    return ids, span


SLUG = "span-test"
LINK_URL = "https://example.com/very-private-target"


@pytest.fixture(scope="module", params=["grpc", "http/protobuf", "http/protobuf traces endpoint", "grpc on postgres"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exported]:
    """One service run per OTLP protocol (gRPC; HTTP to a base URL; HTTP to a full traces URL) and its spans,
    and one on PostgreSQL (the store changes the database spans only)."""
    protocol: str = request.param.removesuffix(" on postgres")
    receiver: OtlpGrpcReceiver | OtlpHttpReceiver = OtlpGrpcReceiver() if protocol == "grpc" else OtlpHttpReceiver()
    with receiver:
        env = {
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol.split(maxsplit=1)[0],
            "OTEL_SERVICE_NAME": "svc-under-test",
            "DEPLOYMENT_ENVIRONMENT": "telemetry-test",
            "OTEL_EXPORTER_OTLP_HEADERS": "x-tenant=acme,x-scope=traces",
        }
        if isinstance(receiver, OtlpHttpReceiver) and protocol.endswith("traces endpoint"):
            env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.traces_endpoint
        else:
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
        if request.param.endswith("on postgres"):
            cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
            env["DATABASE_URL"] = cluster.create_database(f"traces_{tmp_path_factory.mktemp('db').name}")
        with service_thread(base_env(tmp_path_factory.mktemp("svc"), **env)) as svc, httpx.Client() as client:
            created = client.post(f"{svc.url}/links", json={"url": LINK_URL, "slug": SLUG})
            assert created.status_code == 201, created.text
            got = client.get(f"{svc.url}/links/{SLUG}")
            assert got.status_code == 200, got.text
            version = client.get(f"{svc.url}/version")
            assert version.status_code == 200
            store = "postgresql" if "DATABASE_URL" in env else "sqlite"
            result = Exported(trace_response(created), trace_response(got), trace_response(version), receiver, store)
            # Two server spans with a DB child each, and /version's server span.
            receiver.spans(where=lambda s: s.trace_id in {result.created.trace_id, result.got.trace_id}, count=4)
            receiver.spans("GET /version", trace_id=result.version.trace_id)
        yield result


def test_server_span_arrives_named_by_method_and_route_template(exported: Exported) -> None:
    span = exported.server(exported.got)

    assert span.name == "GET /links/{slug}"
    assert span.span_id == exported.got.span_id
    assert span.attributes["http.route"] == "/links/{slug}"
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["url.path"] == f"/links/{SLUG}"
    assert span.parent_span_id == ""
    assert span.status == "UNSET"
    assert exported.server(exported.created).name == "POST /links"


def test_resource_attributes_identify_service_version_instance_and_environment(exported: Exported) -> None:
    span = exported.server(exported.version)

    assert span.resource["service.name"] == "svc-under-test"
    assert span.resource["service.version"] == (read_build_info().version or "unknown")
    assert str(os.getpid()) in span.resource["service.instance.id"]
    assert span.resource["deployment.environment.name"] == "telemetry-test"


def test_database_queries_are_child_spans_with_placeholders_and_no_literal_values(exported: Exported) -> None:
    for ids, operation in ((exported.created, "INSERT"), (exported.got, "SELECT")):
        server = exported.server(ids)
        [db] = [s for s in exported.trace(ids) if s.kind == "CLIENT"]
        assert db.parent_span_id == server.span_id
        assert db.name == f"{operation} links"
        assert db.attributes["db.operation.name"] == operation
        assert db.attributes["db.collection.name"] == "links"
        query = db.attributes["db.query.text"]
        assert query.startswith(operation)
        assert db.attributes["db.system.name"] == exported.store
        if exported.store == "postgresql":
            assert "$1" in query
            # A network database names its server, as the conventions ask; the embedded file has none.
            assert db.attributes["server.address"] == "127.0.0.1"
            assert isinstance(db.attributes["server.port"], int)
        else:
            assert "?" in query
            assert "server.address" not in db.attributes
        for literal in (SLUG, "example.com", "very-private"):
            assert literal not in query
        assert server.start_ns <= db.start_ns <= db.end_ns <= server.end_ns


def test_otlp_headers_from_the_environment_reach_the_receiver(exported: Exported) -> None:
    headers = [export.headers for export in exported.otlp.exports()]

    assert headers
    assert all(h.get("x-tenant") == "acme" and h.get("x-scope") == "traces" for h in headers), headers


def test_probes_metrics_and_docs_are_not_traced(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    for path in ("/healthz", "/readyz", "/docs", "/docs/openapi.json", "/openapi.json", "/docs-assets/swagger-ui.css"):
        response = client.get(f"{traced.url}{path}")
        assert response.status_code < 500, (path, response.status_code)
        assert "traceresponse" not in response.headers, path
    assert client.get(f"{traced.admin_url}/metrics").status_code == 200

    barrier = flush_spans(client, traced.url, otlp)

    stray = [(s.name, s.attributes.get("db.query.text")) for s in otlp.all_spans() if s.trace_id != barrier.trace_id]
    assert stray == []


def test_a_request_exports_its_server_span_and_db_spans_and_no_asgi_receive_or_send_spans(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    response = client.post(f"{traced.url}/links", json={"url": "https://example.com/a", "slug": "no-internal"})
    ids = trace_response(response)
    flush_spans(client, traced.url, otlp)

    spans = otlp.spans(trace_id=ids.trace_id)
    kinds = sorted(s.kind for s in spans)
    assert kinds == ["CLIENT", "SERVER"], [(s.name, s.kind) for s in spans]
    assert not [s.name for s in spans if "receive" in s.name or "send" in s.name or s.kind == "INTERNAL"]


def test_incoming_traceparent_continues_the_callers_trace_and_baggage_is_accepted(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = client.get(
        f"{traced.url}/version",
        headers={"traceparent": f"00-{caller_trace}-{caller_span}-01", "baggage": "tenant=acme,user.tier=gold"},
    )
    assert response.status_code == 200

    [span] = otlp.spans("GET /version", trace_id=caller_trace)
    assert span.parent_span_id == caller_span
    assert trace_response(response).trace_id == caller_trace


def test_unsampled_incoming_traceparent_is_honoured_and_not_exported(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    caller_trace = "0af7651916cd43dd8448eb211c80319c"
    response = client.get(f"{traced.url}/version", headers={"traceparent": f"00-{caller_trace}-b7ad6b7169203331-00"})
    assert response.status_code == 200
    ids = trace_response(response)
    assert (ids.trace_id, ids.sampled) == (caller_trace, False)

    flush_spans(client, traced.url, otlp)
    assert [s.name for s in otlp.all_spans() if s.trace_id == caller_trace] == []


@pytest.mark.parametrize(
    "headers",
    [
        {"traceparent": "00-not-a-trace-01"},
        {"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"},
        {"baggage": "tenant=acme"},
    ],
    ids=["garbage traceparent", "all-zero trace id", "baggage alone"],
)
def test_unusable_or_partial_propagation_headers_start_a_new_root_trace(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client, headers: dict[str, str]
) -> None:
    _, span = _served(client, otlp, f"{traced.url}/version", 200, headers)
    assert span.parent_span_id == ""


def test_traceresponse_header_names_the_exported_server_span(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    ids, span = _served(client, otlp, f"{traced.url}/links/no-such-slug", 404)
    assert ids.sampled
    assert (span.name, span.span_id) == ("GET /links/{slug}", ids.span_id)
    assert span.attributes["http.response.status_code"] == 404
    assert span.status == "UNSET"  # a 4xx is the client's error, not the server's


def test_unhandled_error_marks_the_server_span_as_error_with_an_exception_event(
    traced: ServiceThread, otlp: OtlpGrpcReceiver, client: httpx.Client
) -> None:
    _, span = _served(client, otlp, f"{traced.url}/fault", 500)
    assert span.name == "GET /fault"
    assert span.status == "ERROR"
    assert span.attributes["http.response.status_code"] == 500
    assert span.attributes["error.type"] == "500"
    assert "exception" in span.event_names
