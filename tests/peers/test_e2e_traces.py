"""End to end: the real service exports its spans to real Jaeger over OTLP/gRPC and OTLP/HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.service import service_process
from tests.peers.e2e import trace_id_of, traced_env
from tests.peers.jaeger import JaegerPeer

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_requests_reach_jaeger_named_by_route_template_with_their_db_span(
    jaeger: JaegerPeer, tmp_path: Path, protocol: str
) -> None:
    with service_process(traced_env(tmp_path, jaeger, protocol)) as svc:
        created = httpx.post(f"{svc.url}/links", json={"url": "https://example.com/e2e", "slug": "e2e-abc"}, timeout=5)
        assert created.status_code == httpx.codes.CREATED, created.text
        fetched = httpx.get(f"{svc.url}/links/e2e-abc", timeout=5)
        assert fetched.status_code == httpx.codes.OK
        trace_id = trace_id_of(fetched)

        trace = jaeger.wait_for_trace(trace_id, min_spans=2)

    root = trace.span("GET /links/{slug}")  # the template, never the raw path /links/e2e-abc
    assert root.service == "svc"
    assert root.parent_span_id is None
    assert root.attributes["http.route"] == "/links/{slug}"
    assert root.attributes["http.response.status_code"] == httpx.codes.OK
    [db_span] = trace.children(root)
    assert db_span.name == "SELECT links"
    assert db_span.attributes["db.system.name"] == "sqlite"
    assert "e2e-abc" not in db_span.attributes["db.query.text"]  # placeholders only, never values

    operations = {span.name for found in jaeger.find_traces("svc") for span in found.spans}
    assert {"POST /links", "GET /links/{slug}", "INSERT links", "SELECT links"} <= operations
    assert not any("e2e-abc" in name for name in operations)
