"""Metrics: the service's own Prometheus registry with RED metrics, business counters and build info."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from svc.buildinfo import BuildInfo
from svc.red import RedCollector

__all__ = ["KNOWN_METHODS", "Metrics"]

# Methods outside this set share one label value: a client sending random verbs must not add series.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


class Metrics:
    """Every metric svc exports, on a registry of its own so tests and benchmarks never share state."""

    def __init__(self, build: BuildInfo) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        # Requests, duration and response size: a custom collector (svc.red), cheaper per request than the
        # library's Counter and Histograms, with the same exposition.
        self.red = RedCollector(DURATION_BUCKETS, SIZE_BUCKETS)
        self.registry.register(self.red)
        self.active = Gauge(
            "http_server_active_requests", "Requests being served now.", ("method",), registry=self.registry
        )
        self.links_created = Counter("svc_links_created", "Links created.", registry=self.registry)
        self.redirects = Counter("svc_redirects", "Redirects served.", registry=self.registry)
        self.dropped = Counter(
            "svc_telemetry_dropped",
            "Telemetry items not delivered, by signal and reason (queue_full, export_failed, rate_limited, ...).",
            ("signal", "reason"),
            registry=self.registry,
        )
        self.edge_rejected = Counter(
            "svc_http_rejected",
            "Connections and requests refused at the HTTP edge, by reason (svc/edge.py).",
            ("listener", "reason"),
            registry=self.registry,
        )
        Gauge(
            "svc_build_info", "Build of the running service; always 1.", ("version", "commit"), registry=self.registry
        ).labels(build.version or "unknown", build.commit or "unknown").set(1)
        # labels() validates and locks on every call; the label sets are bounded, so their children are cached.
        self._active: dict[str, Gauge] = {}

    def active_for(self, method: str) -> Gauge:
        """The in-flight gauge child for a (normalised) method."""
        child = self._active.get(method)
        if child is None:
            child = self._active[method] = self.active.labels(method)
        return child

    def observe(self, method: str, route: str, status: int, seconds: float, size: int, trace_id: str | None) -> None:
        """Record one finished request; the duration carries the trace id as an exemplar when it was sampled."""
        self.red.observe(method, route, status, seconds, size, trace_id)

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition body and content type: OpenMetrics (with exemplars) if the scraper asks, else text 0.0.4."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
