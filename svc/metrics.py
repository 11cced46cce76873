"""Metrics: the service's own Prometheus registry with RED metrics, business counters and build info."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from svc.buildinfo import BuildInfo
from svc.exchange import Exchange
from svc.red import RedCollector

__all__ = ["DB_FAILURE_REASONS", "Metrics"]

DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)
# Waiting for a pooled connection is normally microseconds; the tail up to the pool timeout is what matters.
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Why a store call was answered 503/507 instead of served (svc.store): a fixed set, so bounded series.
DB_FAILURE_REASONS = ("unavailable", "timeout", "pool_exhausted", "schema", "storage_full")


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
        # The database client's pool, named after OpenTelemetry's db.client.connection.* metrics.
        self.db_wait = Histogram(
            "db_client_connection_wait_time_seconds",
            "Time a query waited for a database connection (the pool, or SQLite's one connection thread).",
            buckets=WAIT_BUCKETS,
            registry=self.registry,
        )
        self.db_connections = Gauge(
            "db_client_connection_count", "DB connections by state (used|idle).", ("state",), registry=self.registry
        )
        self.db_connections_max = Gauge(
            "db_client_connection_max", "Most database connections the pool may hold open.", registry=self.registry
        )
        self.db_failures = Counter(
            "svc_db_failures",
            "Store calls answered 503 or 507 instead of served, by reason.",
            ("reason",),
            registry=self.registry,
        )
        self._db_failures = {reason: self.db_failures.labels(reason) for reason in DB_FAILURE_REASONS}
        Gauge(
            "svc_build_info", "Build of the running service; always 1.", ("version", "commit"), registry=self.registry
        ).labels(build.version or "unknown", build.commit or "unknown").set(1)
        # labels() validates and locks on every call; the label sets are bounded, so their children are cached.
        self._active: dict[str, Gauge] = {}

    def db_failures_for(self, reason: str) -> Counter:
        """The failure counter child for one of DB_FAILURE_REASONS."""
        return self._db_failures[reason]

    def watch_pool(self, used: Callable[[], float], idle: Callable[[], float], maximum: int) -> None:
        """Read the pool's connection counts at each scrape (no bookkeeping on the query path)."""
        self.db_connections.labels("used").set_function(used)
        self.db_connections.labels("idle").set_function(idle)
        self.db_connections_max.set(maximum)

    def active_for(self, method: str) -> Gauge:
        """The in-flight gauge child for a (normalised) method."""
        child = self._active.get(method)
        if child is None:
            child = self._active[method] = self.active.labels(method)
        return child

    def observe(self, exchange: Exchange) -> None:
        """Record one finished request; the duration carries the trace id as an exemplar when it was sampled."""
        self.red.observe(
            exchange.method,
            exchange.route,
            exchange.status,
            exchange.duration_ns / 1e9,
            exchange.size,
            exchange.exemplar_trace_id,
        )

    def render(self, accept: str) -> tuple[bytes, str]:
        """The exposition body and content type: OpenMetrics (with exemplars) if the scraper asks, else text 0.0.4."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
