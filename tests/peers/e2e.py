"""Shared steps of the end-to-end tests: the service's environment for the peers, and reading its trace ids."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.service import base_env
from harness.traceresponse import parse_traceresponse
from tests.peers.jaeger import JaegerPeer


def traced_env(tmp_path: Path, jaeger: JaegerPeer, protocol: str = "grpc", **overrides: str) -> dict[str, str]:
    """A service environment exporting spans to ``jaeger`` over ``protocol`` (grpc | http/protobuf)."""
    endpoint = jaeger.otlp_grpc_endpoint if protocol == "grpc" else jaeger.otlp_http_endpoint
    return base_env(
        tmp_path,
        OTEL_SERVICE_NAME="svc",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        OTEL_EXPORTER_OTLP_PROTOCOL=protocol,
        OTEL_EXPORTER_OTLP_TIMEOUT="2000",
        **overrides,
    )


def trace_id_of(response: httpx.Response) -> str:
    """The trace id from the `traceresponse: 00-<trace_id>-<span_id>-<flags>` header."""
    parsed = parse_traceresponse(response.headers.get("traceresponse"))
    assert parsed is not None, f"no valid traceresponse: {dict(response.headers)}"
    return parsed.trace_id
