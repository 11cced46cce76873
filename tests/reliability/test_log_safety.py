"""Log and metric safety: user text cannot break or forge a log line, secrets reach no signal, random paths add
no metric series and no span names."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import string
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from harness.otlp_receivers import OtlpGrpcReceiver
from harness.polling import wait_for
from harness.sentry_ingest import SentryReceiver
from harness.service import ServiceProcess, base_env, service_process
from svc.buildinfo import read_build_info
from svc.config import Config
from svc.exchange import KNOWN_METHODS
from svc.logs import ConsoleFormatter
from svc.server_span import UNTRACED_PREFIXES
from svc.service import create_app
from svc.telemetry import Telemetry
from tests.reliability.support import assert_line_follows_contract, http_bytes, raw_request, split_log_lines

# Secrets a client or the operator hands svc; none may reach a log line, a span or a Sentry event.
AUTHORIZATION = "Bearer rel-secret-authorization-0451"
COOKIE = "session=rel-secret-cookie-7d2e; csrftoken=rel-secret-csrf-91aa"
QUERY_TOKEN = "rel-secret-query-token-55c1"
QUERY_API_KEY = "rel-secret-query-apikey-e7f0"
OTLP_HEADER_SECRET = "rel-secret-otlp-header-3b9c"
SENTRY_KEY = "rel-secret-dsn-key-c0ffee"
SECRETS = (
    "rel-secret-authorization-0451",
    "rel-secret-cookie-7d2e",
    "rel-secret-csrf-91aa",
    QUERY_TOKEN,
    QUERY_API_KEY,
    OTLP_HEADER_SECRET,
    SENTRY_KEY,
)

# Text built to break a line or pass for fields: quotes, braces, a newline, ANSI escapes, Unicode line breaks.
FORGED = '", "log.level": "critical", "message": "forged", "trace.id": "00000000000000000000000000000000'
HOSTILE_PATHS = [
    '/links/x\n{"log.level":"critical","message":"forged"}',
    f"/links/{FORGED}",
    "/r/\x1b[2J\x1b[31mred\x1b[0m",
    '/nowhere/\u2028{"message":"forged"}\u2029\x85',
    "/links/\r\nX-Injected: 1",
    '/links/\\u000a\\"',
]
HOSTILE_USER_AGENTS = [
    f"Mozilla/5.0{FORGED}",
    "agent \x85 with NEL\tand a tab",  # a latin-1 byte that str.splitlines() treats as a line break
    '{"message": "forged"}\\n\\u001b[31m',
]
# Raw control bytes in a header never reach svc: uvicorn's parser answers 400 itself (ANSI comes in by the path).
UNPARSABLE_USER_AGENTS = ["curl/8 \x1b[31mRED\x1b[0m", "bell \x07", "del \x7f"]


@dataclass
class Hostile:
    svc: ServiceProcess
    otlp: OtlpGrpcReceiver
    sentry: SentryReceiver
    sent: dict[str, tuple[str, str]]  # x-request-id -> (decoded path, user agent) of the hostile requests


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    """svc exporting to a real OTLP receiver and Sentry sink, fed hostile and secret-bearing requests."""
    with OtlpGrpcReceiver() as otlp, SentryReceiver(key=SENTRY_KEY) as sentry:
        env = base_env(
            tmp_path_factory.mktemp("log-safety"),
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint,
            OTEL_EXPORTER_OTLP_HEADERS=f"authorization=Bearer {OTLP_HEADER_SECRET}",
            SENTRY_DSN=sentry.dsn,
            FAULTS_ENABLED="true",
        )
        # A real process: its stdout holds svc's lines only (in a thread, the test's own loggers would write there).
        with service_process(env) as svc:
            sent: dict[str, tuple[str, str]] = {}
            port = svc.public[1]
            for i, path in enumerate(HOSTILE_PATHS):
                for j, agent in enumerate(HOSTILE_USER_AGENTS):
                    request_id = f"hostile-{i}-{j}"
                    target = quote(path, safe="/").encode()
                    headers = {"user-agent": agent, "x-request-id": request_id}
                    raw_request(port, http_bytes("GET", target, headers))
                    sent[request_id] = (path, agent)
            for agent in UNPARSABLE_USER_AGENTS:
                refused = raw_request(port, http_bytes("GET", b"/version", {"user-agent": agent}))
                assert (refused.status, refused.body) == (400, b"Invalid HTTP request received."), refused
            secret_headers = {"authorization": AUTHORIZATION, "cookie": COOKIE, "proxy-authorization": AUTHORIZATION}
            query = f"token={QUERY_TOKEN}&api_key={QUERY_API_KEY}"
            with httpx.Client(base_url=svc.url, headers=secret_headers) as client:
                assert client.post(f"/links?{query}", json={"url": "https://example.com", "slug": "safe"}).status_code
                for path in ("/links/safe", "/r/safe", "/version", "/links", "/nowhere"):
                    client.get(f"{path}?{query}")
                faults = [client.get(f"/fault?{query}&tag=secret-check") for _ in range(3)]
            assert all(r.status_code == 500 for r in faults)
            for response in faults:
                trace_id = response.headers["traceresponse"].split("-")[1]
                sentry.wait_event(trace_id)
            # Spans end before the response is sent; one more traced request flushes the batch behind them.
            barrier = httpx.get(f"{svc.url}/version", headers={"x-request-id": "barrier"})
            otlp.spans("GET /version", trace_id=barrier.headers["traceresponse"].split("-")[1])
            yield Hostile(svc, otlp, sentry, sent)
            svc.signal(signal.SIGTERM)
            assert svc.wait(15) == 0


def test_every_stdout_line_is_one_json_object_with_exactly_the_contracts_fields(hostile: Hostile) -> None:
    lines = split_log_lines(hostile.svc.text())
    assert len(lines) > len(hostile.sent)
    docs = [assert_line_follows_contract(line) for line in lines]
    assert not [d for d in docs if d["log.level"] == "critical" or d["message"] == "forged"], "a field was forged"
    assert all(d["trace.id"] != "0" * 32 for d in docs if "trace.id" in d)


def test_hostile_paths_and_user_agents_are_logged_verbatim_in_their_own_fields(hostile: Hostile) -> None:
    docs = [json.loads(line) for line in split_log_lines(hostile.svc.text())]
    access = {d["http.request.id"]: d for d in docs if d["event.dataset"] == "svc.access"}
    for request_id, (path, agent) in hostile.sent.items():
        line = access[request_id]
        assert line["url.path"] == path
        assert line["user_agent.original"] == agent
        assert line["http.response.status_code"] == 404
        assert line["http.route"] in ("unmatched", "/links/{slug}", "/r/{slug}")
    assert sum(1 for d in docs if d.get("http.request.id", "").startswith("hostile-")) == len(hostile.sent)


def test_console_format_escapes_control_characters() -> None:
    record = logging.LogRecord("svc.access", logging.INFO, __file__, 1, "GET %s", ("/x\n\x1b[31mfake\r",), None)
    record.__dict__["user_agent.original"] = "ua\x1b]0;title\x07\u2028"
    text = ConsoleFormatter({"service.name": "svc"}).format(record)
    for control in ("\n", "\r", "\x1b", "\x07", "\u2028"):
        assert control not in text, repr(text)


def test_secrets_never_reach_logs(hostile: Hostile) -> None:
    text = hostile.svc.text()
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, leaked


def test_secrets_never_reach_spans(hostile: Hostile) -> None:
    spans = hostile.otlp.all_spans()
    assert spans
    text = "\n".join(repr(span) for span in spans)
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, leaked
    assert not any("url.query" in span.attributes for span in spans)


def test_secrets_never_reach_sentry_events(hostile: Hostile) -> None:
    events = hostile.sentry.events()
    assert len(events) == 3
    event_text = json.dumps(events)
    leaked = [s for s in SECRETS if s in event_text]
    assert not leaked, leaked
    for event in events:
        request = event["request"]
        assert not {"authorization", "cookie", "proxy-authorization"} & {k.lower() for k in request["headers"]}
        assert QUERY_TOKEN not in request.get("query_string", "")
    # The whole envelopes too (the DSN's key travels only in the X-Sentry-Auth header, where it belongs).
    for ingest in hostile.sentry.requests():
        body = ingest.raw_envelope.decode("utf-8", "replace")
        assert not [s for s in SECRETS if s in body], body[:500]


# --- cardinality: 10,000 random paths -----------------------------------------------------------------------
ROUTES = ("/healthz", "/readyz", "/version", "/links", "/links/{slug}", "/r/{slug}", "/slow", "/unmatched")
METHODS = ("GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS", "PURGE", "X-RANDOM")


class _SpanNames(SpanProcessor):
    """Collects the name of every span that ends (the in-process stand-in for a receiver)."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.count = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.names.add(span.name)
        self.count += 1


def _random_target(rng: random.Random) -> str:
    token = "".join(rng.choices(string.ascii_letters + string.digits + "-_.~%", k=rng.randint(1, 40)))
    kind = rng.randrange(6)
    if kind == 0:
        return f"/{token}/{rng.randrange(10**9)}"
    if kind == 1:
        return f"/links/{token.lower()}"
    if kind == 2:
        return f"/r/{token}"
    if kind == 3:
        return f"/docs-assets/{token}.js"
    if kind == 4:
        return f"/links/{token}/{token}"
    return f"/{token}?{token}={token}"


async def _serve(app: Any, requests: list[tuple[str, str]]) -> list[int]:
    """Drive the ASGI app directly: lifespan startup, the requests one by one, lifespan shutdown."""
    lifespan: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started = asyncio.Event()

    async def lifespan_send(message: dict[str, Any]) -> None:
        if message["type"] == "lifespan.startup.complete":
            started.set()
        elif message["type"] == "lifespan.startup.failed":
            raise AssertionError(message)

    lifespan_scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    runner = asyncio.create_task(app(lifespan_scope, lifespan.get, lifespan_send))
    await lifespan.put({"type": "lifespan.startup"})
    await asyncio.wait_for(started.wait(), 10)
    statuses = []
    for method, target in requests:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        statuses.append(status)
    await lifespan.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(runner, 10)
    return statuses


def _http_series(telemetry: Telemetry) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in telemetry.metrics.registry.collect()
        if family.name.startswith("http_server")
        for sample in family.samples
    }


def test_ten_thousand_random_paths_add_no_metric_series_and_no_span_names(tmp_path: Path) -> None:
    config = Config(database_path=str(tmp_path / "svc.db"))
    names = _SpanNames()
    telemetry = Telemetry.from_config(config, read_build_info(), span_processors=[names])
    app = create_app(config, telemetry=telemetry)
    rng = random.Random(7)
    # Baseline: every method on every kind of path once, so each bounded label combination has been seen.
    baseline = [(m, _random_target(random.Random(k))) for m in METHODS for k in range(60)]
    storm = [(rng.choice(METHODS), _random_target(rng)) for _ in range(10_000)]
    access = logging.getLogger("svc.access")
    level = access.level
    access.setLevel(logging.WARNING)  # 10,000 404 lines would only slow the test; the middleware still runs
    try:
        statuses = asyncio.run(_serve(app, baseline))
        series_before = _http_series(telemetry)
        names_before = set(names.names)
        statuses += asyncio.run(_serve(app, storm))
    finally:
        access.setLevel(level)
    assert all(0 < s < 500 for s in statuses), {s for s in statuses if not 0 < s < 500}
    series_after = _http_series(telemetry)
    assert series_after == series_before, sorted(series_after - series_before)[:20]
    assert names.names == names_before, sorted(names.names - names_before)[:20]
    routes = {dict(labels).get("route") for _, labels in series_after} - {None}
    assert routes <= {"unmatched", "/links", "/links/{slug}", "/r/{slug}", "/docs-assets/{file_path}"} | set(ROUTES)
    methods = {dict(labels).get("method") for _, labels in series_after} - {None}
    assert methods <= KNOWN_METHODS | {"_OTHER"}
    combos = {labels for name, labels in series_after if name == "http_server_requests_total"}
    assert len(combos) <= 60, sorted(combos)  # bounded by methods x route templates x status codes
    # Span names are methods or "METHOD /template" or database operations: never a raw path.
    assert all(not any(c in name for c in "?%~") and name.count("/") <= 2 for name in names.names), names.names
    traced = [t for _, t in baseline + storm if not t.startswith(UNTRACED_PREFIXES)]
    assert names.count >= len(traced) > 8_000  # a server span for every traced request: the storm did run


def test_metrics_exposition_stays_small_after_the_storm(tmp_path: Path) -> None:
    # The same storm through the real server would take longer; the exposition size is what a scrape pays.
    config = Config(database_path=str(tmp_path / "svc.db"))
    telemetry = Telemetry.from_config(config, read_build_info())
    app = create_app(config, telemetry=telemetry)
    rng = random.Random(11)
    asyncio.run(_serve(app, [(rng.choice(METHODS), _random_target(rng)) for _ in range(2_000)]))
    body, _ = telemetry.metrics.render("")
    assert len(body) < 200_000, len(body)
    assert b"nowhere" not in body
    assert b"docs-assets/" not in body.replace(b"docs-assets/{file_path}", b"")


def test_the_hostile_run_left_the_service_healthy(hostile: Hostile) -> None:
    assert httpx.get(f"{hostile.svc.url}/readyz").status_code == 200
    wait_for(lambda: hostile.svc.text().endswith("\n"), 5, what="complete log lines")
