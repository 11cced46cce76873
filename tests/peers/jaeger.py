"""Jaeger v2 run from the lab's deploy/jaeger/config.yaml on free loopback ports, with a query-API client."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.backends import free_port
from tests.peers.process import PeerProcess, wait_until

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"
UI_CONFIG = REPO / "deploy" / "jaeger" / "ui-config.json"
START_TIMEOUT = 30.0


@dataclass(frozen=True)
class Span:
    """One span as Jaeger stored it (from the OTLP-shaped /api/v3 answer)."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    service: str
    attributes: dict[str, Any]
    status_code: int


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: list[Span] = field(default_factory=list)

    def span(self, name: str) -> Span:
        """The first span with this operation name (AssertionError listing the names when none has it)."""
        for span in self.spans:
            if span.name == name:
                return span
        raise AssertionError(f"no span {name!r} in trace {self.trace_id}: {[s.name for s in self.spans]}")

    @property
    def roots(self) -> list[Span]:
        return [span for span in self.spans if span.parent_span_id is None]

    def children(self, parent: Span) -> list[Span]:
        return [span for span in self.spans if span.parent_span_id == parent.span_id]


def _attribute_value(value: dict[str, Any]) -> Any:
    """An OTLP AnyValue as a plain Python value (ints arrive as JSON strings in OTLP/JSON)."""
    if "intValue" in value:
        return int(value["intValue"])
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return value


def _attributes(raw: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _attribute_value(item.get("value", {})) for item in raw or []}


def parse_otlp_traces(body: dict[str, Any]) -> list[Trace]:
    """Group the spans of an /api/v3 answer (``{"result": {"resourceSpans": [...]}}``) into traces."""
    by_trace: dict[str, list[Span]] = {}
    for resource_spans in (body.get("result") or {}).get("resourceSpans") or []:
        service = str(_attributes(resource_spans.get("resource", {}).get("attributes")).get("service.name", ""))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for raw in scope_spans.get("spans") or []:
                span = Span(
                    trace_id=raw["traceId"],
                    span_id=raw["spanId"],
                    parent_span_id=raw.get("parentSpanId") or None,
                    name=raw["name"],
                    kind=int(raw.get("kind", 0)),
                    service=service,
                    attributes=_attributes(raw.get("attributes")),
                    status_code=int((raw.get("status") or {}).get("code", 0)),
                )
                by_trace.setdefault(span.trace_id, []).append(span)
    return [Trace(trace_id, spans) for trace_id, spans in by_trace.items()]


class JaegerPeer:
    """A running Jaeger: OTLP endpoints to send to and query helpers; ``stop()`` ends it by PID."""

    def __init__(self, binary: str, workdir: Path, prometheus_url: str = "http://127.0.0.1:9") -> None:
        self.host = "127.0.0.1"
        self.ports = {
            name: free_port()
            for name in ("OTLP_GRPC", "OTLP_HTTP", "QUERY_HTTP", "QUERY_GRPC", "HEALTH", "SPANMETRICS", "TELEMETRY")
        }
        env = {f"JAEGER_{name}_PORT": str(port) for name, port in self.ports.items()}
        env |= {
            "JAEGER_LISTEN_HOST": self.host,
            "JAEGER_UI_CONFIG": str(UI_CONFIG),
            "JAEGER_PROMETHEUS_URL": prometheus_url,
            "JAEGER_MAX_TRACES": "1000",
        }
        self.process = PeerProcess("jaeger", [binary, "--config", str(CONFIG)], workdir, env)
        self.http = httpx.Client(base_url=self.query_url, timeout=5.0)

    @property
    def otlp_grpc_endpoint(self) -> str:
        return f"http://{self.host}:{self.ports['OTLP_GRPC']}"

    @property
    def otlp_http_endpoint(self) -> str:
        """Base OTLP/HTTP endpoint (the SDK appends /v1/traces when given it as OTEL_EXPORTER_OTLP_ENDPOINT)."""
        return f"http://{self.host}:{self.ports['OTLP_HTTP']}"

    @property
    def query_url(self) -> str:
        return f"http://{self.host}:{self.ports['QUERY_HTTP']}"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.ports['HEALTH']}/status"

    @property
    def spanmetrics_target(self) -> str:
        """host:port of the span-metrics exporter, for a Prometheus scrape job."""
        return f"{self.host}:{self.ports['SPANMETRICS']}"

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> JaegerPeer:
        def healthy() -> bool:
            return httpx.get(self.health_url, timeout=1.0).status_code == httpx.codes.OK

        wait_until(healthy, timeout, "Jaeger health check", alive=self.process.check_alive)
        return self

    def services(self) -> list[str]:
        response = self.http.get("/api/services")
        response.raise_for_status()
        return list(response.json().get("data") or [])

    def find_traces(self, service: str, operation: str | None = None, lookback: float = 3600.0) -> list[Trace]:
        """Traces of ``service`` (optionally with a span named ``operation``) from the last ``lookback`` seconds."""
        now = dt.datetime.now(dt.UTC)
        params = {
            "query.service_name": service,
            "query.start_time_min": (now - dt.timedelta(seconds=lookback)).isoformat().replace("+00:00", "Z"),
            "query.start_time_max": (now + dt.timedelta(seconds=60)).isoformat().replace("+00:00", "Z"),
            "query.num_traces": "100",
        }
        if operation:
            params["query.operation_name"] = operation
        response = self.http.get("/api/v3/traces", params=params)
        if response.status_code == httpx.codes.NOT_FOUND:
            return []  # the v3 API answers 404 when nothing matches
        response.raise_for_status()
        return parse_otlp_traces(response.json())

    def get_trace(self, trace_id: str) -> Trace | None:
        response = self.http.get(f"/api/v3/traces/{trace_id}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        response.raise_for_status()
        traces = parse_otlp_traces(response.json())
        return traces[0] if traces else None

    def wait_for_trace(self, trace_id: str, timeout: float = 15.0, min_spans: int = 1) -> Trace:
        """Poll until the trace is stored with at least ``min_spans`` spans (export and batching are async)."""

        def stored() -> Trace | None:
            trace = self.get_trace(trace_id)
            return trace if trace is not None and len(trace.spans) >= min_spans else None

        return wait_until(stored, timeout, f"trace {trace_id} in Jaeger", alive=self.process.check_alive)

    def stop(self) -> int:
        self.http.close()
        return self.process.stop()
