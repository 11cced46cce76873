"""RED metrics (requests, duration, response size) as a prometheus_client custom Collector.

prometheus_client's Counter and Histogram take a lock, check their exemplar and walk their buckets on every call:
about 7 µs of the request path for the three series of one request (issue 16). Here a request adds to plain
numbers on a series object (bisect for the bucket) and the scrape builds the metric families from them, through
the library's public custom-collector API (`Collector`, `CounterMetricFamily`, `HistogramMetricFamily`, `Sample`,
`Exemplar`). The exposition is the stock one: `_total`/`_created` for the counter, cumulative `_bucket` with `le`,
`_count`, `_sum` and `_created` for the histograms, and the latest trace id as the exemplar of the counter and
of the bucket it fell in. Updates run on the event loop thread only; a scrape from any thread reads a copy.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar, Sample
from prometheus_client.utils import floatToGoString

__all__ = ["RedCollector"]

LABELS = ("method", "route", "status_code")


class _Series:
    """One (method, route, status) label set's numbers."""

    __slots__ = (
        "count",
        "created",
        "duration_buckets",
        "duration_exemplars",
        "duration_sum",
        "exemplar",
        "labels",
        "size_buckets",
        "size_sum",
    )

    def __init__(self, labels: tuple[str, str, str], durations: int, sizes: int) -> None:
        self.labels = labels
        self.created = time.time()
        self.count = 0
        self.exemplar: Exemplar | None = None
        self.duration_buckets = [0] * (durations + 1)  # the last one is +Inf
        self.duration_exemplars: list[Exemplar | None] = [None] * (durations + 1)
        self.duration_sum = 0.0
        self.size_buckets = [0] * (sizes + 1)
        self.size_sum = 0.0


class RedCollector(Collector):
    """http_server_requests_total, http_server_request_duration_seconds and http_server_response_size_bytes."""

    def __init__(self, duration_buckets: Sequence[float], size_buckets: Sequence[float]) -> None:
        self._durations = tuple(duration_buckets)
        self._sizes = tuple(size_buckets)
        self._series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, method: str, route: str, status: int, seconds: float, size: int, trace_id: str | None) -> None:
        """Record one finished request; the trace id (if sampled) becomes the exemplar."""
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = _Series((method, route, str(status)), len(self._durations), len(self._sizes))
            self._series[key] = series  # one dict store: atomic for a scrape on another thread
        series.count += 1
        bucket = bisect_left(self._durations, seconds)  # first bound >= seconds: the `le` bucket it counts in
        series.duration_buckets[bucket] += 1
        series.duration_sum += seconds
        series.size_buckets[bisect_left(self._sizes, size)] += 1
        series.size_sum += size
        if trace_id is not None:
            now = time.time()
            series.exemplar = Exemplar({"trace_id": trace_id}, 1.0, now)
            series.duration_exemplars[bucket] = Exemplar({"trace_id": trace_id}, seconds, now)

    def collect(self) -> Iterator[Metric]:
        """The three families, from a copy of every series."""
        requests = CounterMetricFamily("http_server_requests", "HTTP requests served.", labels=LABELS)
        duration = HistogramMetricFamily(
            "http_server_request_duration_seconds",
            "Time from request start to the last response byte.",
            labels=LABELS,
        )
        size = HistogramMetricFamily("http_server_response_size_bytes", "Response body size.", labels=LABELS)
        for series in list(self._series.values()):
            requests.add_metric(series.labels, series.count, created=series.created, exemplar=series.exemplar)
            _histogram(
                duration,
                series,
                self._durations,
                list(series.duration_buckets),
                series.duration_sum,
                list(series.duration_exemplars),
            )
            _histogram(size, series, self._sizes, list(series.size_buckets), series.size_sum, None)
        yield requests
        yield duration
        yield size


def _histogram(
    family: HistogramMetricFamily,
    series: _Series,
    bounds: Sequence[float],
    counts: list[int],
    total: float,
    exemplars: list[Exemplar | None] | None,
) -> None:
    buckets: list[tuple[str, float] | tuple[str, float, Exemplar]] = []
    cumulative = 0
    for index, bound in enumerate((*bounds, float("inf"))):
        cumulative += counts[index]
        exemplar = exemplars[index] if exemplars is not None else None
        le = floatToGoString(bound)  # type: ignore[no-untyped-call] # the library's own `le` format, untyped
        buckets.append((le, cumulative, exemplar) if exemplar is not None else (le, cumulative))
    family.add_metric(series.labels, buckets, total)
    # HistogramMetricFamily has no `created`; the stock Histogram exposes it, so the series does too.
    family.samples.append(
        Sample(f"{family.name}_created", dict(zip(LABELS, series.labels, strict=True)), series.created)
    )
