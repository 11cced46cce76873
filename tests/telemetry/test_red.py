"""svc.red's RedCollector exposes exactly what prometheus_client's own Counter and Histograms would, fed the same."""

from __future__ import annotations

import random
import re

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder

from svc.metrics import DURATION_BUCKETS, SIZE_BUCKETS
from svc.red import LABELS, RedCollector

# Creation and exemplar timestamps are wall-clock times taken a moment apart: compared by presence, not value.
_CREATED = re.compile(r"^(\S+_created\{.*\}) \S+$")
_EXEMPLAR_TIME = re.compile(r"^(.* # \{.*\} \S+) \S+$")


def _normalised(text: str) -> list[str]:
    lines = [_CREATED.sub(r"\1 <time>", line) for line in text.splitlines()]
    return sorted(_EXEMPLAR_TIME.sub(r"\1 <time>", line) for line in lines)


def _both() -> tuple[CollectorRegistry, CollectorRegistry]:
    stock, ours = CollectorRegistry(), CollectorRegistry()
    requests = Counter("http_server_requests", "HTTP requests served.", LABELS, registry=stock)
    duration = Histogram(
        "http_server_request_duration_seconds",
        "Time from request start to the last response byte.",
        LABELS,
        buckets=DURATION_BUCKETS,
        registry=stock,
    )
    size = Histogram(
        "http_server_response_size_bytes", "Response body size.", LABELS, buckets=SIZE_BUCKETS, registry=stock
    )
    red = RedCollector(DURATION_BUCKETS, SIZE_BUCKETS)
    ours.register(red)
    rng = random.Random(16)
    for n in range(400):
        method, route, status = (
            rng.choice(["GET", "POST"]),
            rng.choice(["/links", "/links/{slug}"]),
            rng.choice([200, 404, 500]),
        )
        seconds = rng.choice([0.001, 0.0005, 0.0025, 0.2, 10.0, 20.0, rng.random()])
        body = rng.choice([0, 64, 65, 100_000, 10**7])
        trace_id = f"{n:032x}" if rng.random() < 0.3 else None
        exemplar = {"trace_id": trace_id} if trace_id else None
        requests.labels(method, route, str(status)).inc(1, exemplar)
        duration.labels(method, route, str(status)).observe(seconds, exemplar)
        size.labels(method, route, str(status)).observe(body)
        red.observe(method, route, status, seconds, body, trace_id)
    return stock, ours


def test_the_classic_text_exposition_is_the_stock_metrics() -> None:
    stock, ours = _both()
    encode, _ = choose_encoder("")
    assert _normalised(encode(ours).decode()) == _normalised(encode(stock).decode())


def test_the_openmetrics_exposition_with_exemplars_is_the_stock_metrics() -> None:
    stock, ours = _both()
    encode, content_type = choose_encoder("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    theirs = encode(stock).decode()
    assert " # {trace_id=" in theirs
    assert _normalised(encode(ours).decode()) == _normalised(theirs)
