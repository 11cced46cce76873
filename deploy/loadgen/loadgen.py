"""Lab traffic generator: a realistic, traced mix of requests against svc.

Every request is a CLIENT span of service `loadgen` whose context travels in the W3C `traceparent` header, so Jaeger
shows two-service traces (loadgen -> svc). Spans are named by route template ("GET /links/{slug}"), never by raw
path, so the generator adds no cardinality of its own.

Runs inside the svc image (which already has the OpenTelemetry SDK and OTLP exporter); stdlib HTTP client; the
request type and the weighted draw are harness/mix.py's, mounted beside it (PYTHONPATH).

Environment:
  TARGET_URL       svc's base URL                        (default http://svc:8000)
  LOADGEN_RPS      requests per second, 0 pauses          (default 5)
  LOADGEN_MIX      weights, e.g. "create=15,read=25"      (default DEFAULT_MIX; names as in OPERATIONS)
  LOADGEN_WORKERS  concurrent requests at most           (default 8; a tick is skipped when all are busy)
  OTEL_*           standard OpenTelemetry SDK variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, ...)
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import os
import random
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

# The same Call type and weighted draw as the reliability runs (compose mounts harness/ read-only beside this file).
from harness.mix import Call, pick

HEARTBEAT = Path("/tmp/loadgen-heartbeat")  # noqa: S108 -- a tmpfs in the container; the healthcheck reads it
HEARTBEAT_MAX_AGE_S = 30.0
REQUEST_TIMEOUT_S = 10.0

# Relative weights; the defaults make most traffic succeed, with a steady trickle of each failure kind.
DEFAULT_MIX: dict[str, int] = {
    "create": 15,  # POST /links -> 201
    "read": 25,  # GET /links/{slug} -> 200
    "list": 10,  # GET /links?limit= -> 200
    "redirect": 20,  # GET /r/{slug} -> 307
    "missing": 10,  # GET /links/{slug} for a slug that does not exist -> 404
    "invalid": 8,  # POST /links with a bad URL -> 4xx problem+json
    "slow": 8,  # GET /slow?ms=N -> 200 after N ms (latency panels, exemplars)
    # GET /fault -> 500 (needs FAULTS_ENABLED=true on svc; 404 otherwise). Kept rare on purpose: a histogram
    # bucket holds one exemplar, so frequent faults would overwrite the one scripts/lab-check looks for.
    "fault": 2,
}


@dataclass
class State:
    """What the generator remembers between requests: slugs it created (bounded), and outcome counts."""

    slugs: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))
    counts: collections.Counter[str] = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)


def parse_mix(raw: str | None) -> dict[str, int]:
    """'create=15,fault=0' -> weights; names outside OPERATIONS or negative weights are errors, not ignored."""
    if not raw:
        return dict(DEFAULT_MIX)
    mix: dict[str, int] = {}
    for part in raw.split(","):
        name, sep, weight = part.strip().partition("=")
        if not sep or name not in DEFAULT_MIX or not weight.strip().isdigit():
            raise ValueError(f"LOADGEN_MIX: bad entry {part!r} (want name=weight, names: {', '.join(DEFAULT_MIX)})")
        mix[name] = int(weight)
    if sum(mix.values()) == 0:
        raise ValueError("LOADGEN_MIX: all weights are zero")
    return mix


def plan(op: str, state: State, rng: random.Random) -> Call:
    """The request for an operation; reads fall back to a create until the generator owns some slugs."""
    with state.lock:
        known = list(state.slugs)
    if op in {"read", "redirect"} and not known:
        op = "create"
    token = f"{rng.getrandbits(40):010x}"
    slug = rng.choice(known) if known else ""
    calls = {
        "create": Call("POST", "/links", {"url": f"https://example.com/articles/{token}"}, "/links", op),
        "read": Call("GET", f"/links/{slug}", None, "/links/{slug}", op),
        "list": Call("GET", f"/links?limit={rng.choice([5, 10, 20])}", None, "/links", op),
        "redirect": Call("GET", f"/r/{slug}", None, "/r/{slug}", op),
        "missing": Call("GET", f"/links/missing-{token}", None, "/links/{slug}", op),
        "invalid": Call("POST", "/links", {"url": "not a url"}, "/links", op),
        "slow": Call("GET", f"/slow?ms={rng.choice([50, 150, 400, 900, 1500])}", None, "/slow", op),
        "fault": Call("GET", "/fault?tag=loadgen", None, "/fault", op),
    }
    if op not in calls:
        raise ValueError(f"unknown operation {op!r}")
    return calls[op]


def send(base_url: str, call: Call, tracer: trace.Tracer, timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes]:
    """Make the request inside a CLIENT span and inject its context; returns (status, body), status 0 if no answer."""
    target = urllib.parse.urlsplit(base_url)
    host, port = target.hostname or "localhost", target.port or 80
    with tracer.start_as_current_span(f"{call.method} {call.route}", kind=SpanKind.CLIENT) as span:
        span.set_attribute("http.request.method", call.method)
        span.set_attribute("url.full", base_url.rstrip("/") + call.path)
        span.set_attribute("server.address", host)
        span.set_attribute("server.port", port)
        span.set_attribute("loadgen.operation", call.op)
        headers = {"User-Agent": "svc-loadgen/1", "Accept": "application/json"}
        propagate.inject(headers)  # traceparent (+ tracestate): this is what makes the trace span two services
        data = None
        if call.json is not None:
            data = json.dumps(call.json).encode()
            headers["Content-Type"] = "application/json"
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(call.method, call.path, body=data, headers=headers)
            resp = conn.getresponse()
            status, payload = resp.status, resp.read()
        except OSError as err:
            span.record_exception(err)
            span.set_status(Status(StatusCode.ERROR, f"no answer: {type(err).__name__}"))
            return 0, b""
        finally:
            conn.close()
        span.set_attribute("http.response.status_code", status)
        if status >= 500:  # client spans: only 5xx is the server's failure; 4xx here are requested on purpose
            span.set_status(Status(StatusCode.ERROR))
        return status, payload


def remember(call: Call, status: int, payload: bytes, state: State) -> None:
    """Count the outcome and keep the slug of a successful create for later reads and redirects."""
    with state.lock:
        state.counts[f"{call.op}:{status // 100}xx" if status else f"{call.op}:no-answer"] += 1
        if call.op == "create" and status == 201:
            try:
                slug = json.loads(payload).get("slug")
            except ValueError:
                return
            if isinstance(slug, str):
                state.slugs.append(slug)


def check_heartbeat(path: Path, max_age_s: float = HEARTBEAT_MAX_AGE_S, now: Callable[[], float] = time.time) -> int:
    """Healthcheck: 0 when the generator's loop touched the file recently, else 1."""
    try:
        age = now() - path.stat().st_mtime
    except OSError:
        return 1
    return 0 if age <= max_age_s else 1


def setup_tracing() -> tuple[trace.Tracer, Callable[[], None]]:
    """SDK tracer exporting OTLP per the standard OTEL_* variables (the svc image ships both packages), and its
    shutdown (flushes queued spans)."""
    service = os.environ.get("OTEL_SERVICE_NAME", "loadgen")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return trace.get_tracer("svc.loadgen"), provider.shutdown


def run(
    base_url: str,
    rps: float,
    mix: Mapping[str, int],
    workers: int,
    rng: random.Random,
    tracer: trace.Tracer,
    stop: threading.Event,
    heartbeat: Path | None = HEARTBEAT,
    report_every_s: float = 30.0,
) -> State:
    """Issue requests at `rps` until `stop` is set; a tick is skipped (and counted) when all workers are busy."""
    state = State()
    slots = threading.BoundedSemaphore(workers)
    next_report = time.monotonic() + report_every_s

    def worker(call: Call) -> None:
        try:
            status, payload = send(base_url, call, tracer)
            remember(call, status, payload, state)
        finally:
            slots.release()

    while not stop.is_set():
        if rps <= 0:
            stop.wait(1.0)
        else:
            if slots.acquire(blocking=False):
                call = plan(pick(mix, rng), state, rng)
                threading.Thread(target=worker, args=(call,), daemon=True).start()
            else:
                with state.lock:
                    state.counts["skipped:busy"] += 1
            stop.wait(1.0 / rps)
        if heartbeat is not None:
            heartbeat.touch()
        if time.monotonic() >= next_report:
            next_report += report_every_s
            with state.lock:
                print("loadgen:", json.dumps(dict(sorted(state.counts.items()))), flush=True)
    # Let requests in flight finish (bounded by their own timeout), so their spans end before the exporter flushes.
    for _ in range(workers):
        slots.acquire(timeout=REQUEST_TIMEOUT_S + 1)
    return state


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check-heartbeat", type=Path, help="healthcheck mode: exit 0 if PATH is fresh")
    args = parser.parse_args(argv)
    if args.check_heartbeat is not None:
        return check_heartbeat(args.check_heartbeat)
    try:
        mix = parse_mix(os.environ.get("LOADGEN_MIX"))
        rps = float(os.environ.get("LOADGEN_RPS", "5"))
        workers = int(os.environ.get("LOADGEN_WORKERS", "8"))
    except ValueError as err:
        print(f"loadgen: config error: {err}", file=sys.stderr)
        return 2
    base_url = os.environ.get("TARGET_URL", "http://svc:8000")
    print(f"loadgen: {rps} req/s against {base_url}, mix {mix}", flush=True)
    tracer, shutdown = setup_tracing()
    stop = threading.Event()
    # docker stop sends SIGTERM: finish the loop and flush spans instead of dying mid-batch.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: stop.set())
    state = run(base_url, rps, mix, workers, random.Random(), tracer, stop)
    shutdown()
    print("loadgen: stopped:", json.dumps(dict(sorted(state.counts.items()))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
