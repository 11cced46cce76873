"""scripts/lab-check without Docker: its parsers on real answer shapes, and a whole run against a fake lab."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, redirect_stdout
from types import ModuleType

import pytest

from harness.http_backend import HttpRequest, Reply, ScriptedServer

from .files import LAB_CHECK, load_script

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture(scope="module")
def lab_check() -> ModuleType:
    return load_script(LAB_CHECK, "lab_check")


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_trace_id_is_read_from_a_w3c_traceresponse(lab_check: ModuleType) -> None:
    assert lab_check.trace_id_from_traceresponse(f"00-{TRACE}-00f067aa0ba902b7-01") == TRACE


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        f"00-{TRACE[:-1]}-00f067aa0ba902b7-01",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        "00-" + "z" * 32 + "-00f067aa0ba902b7-01",
    ],
)
def test_malformed_traceresponse_gives_no_trace_id(lab_check: ModuleType, value: str | None) -> None:
    assert lab_check.trace_id_from_traceresponse(value) is None


def test_new_traceparent_is_sampled_and_carries_its_trace_id(lab_check: ModuleType) -> None:
    header, trace_id = lab_check.new_traceparent()
    assert re.fullmatch(rf"00-{trace_id}-[0-9a-f]{{16}}-01", header)


def test_jaeger_services_read_from_api_v3_otlp_json(lab_check: ModuleType) -> None:
    payload = {
        "result": {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                    "scopeSpans": [],
                },
                {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "loadgen"}}]}},
            ]
        }
    }
    assert lab_check.jaeger_services(payload) == ["loadgen", "svc"]


def test_jaeger_services_read_from_api_v1(lab_check: ModuleType) -> None:
    payload = {"data": [{"traceID": TRACE, "processes": {"p1": {"serviceName": "svc"}}}]}
    assert lab_check.jaeger_services(payload) == ["svc"]


def test_exemplar_trace_ids_read_from_prometheus(lab_check: ModuleType) -> None:
    payload = {
        "status": "success",
        "data": [
            {
                "seriesLabels": {"__name__": "http_server_request_duration_seconds_bucket"},
                "exemplars": [{"labels": {"trace_id": TRACE.upper()}, "value": "0.003", "timestamp": 1.5}],
            },
        ],
    }
    assert lab_check.exemplar_trace_ids(payload) == {TRACE}


def spotlight_stream(*trace_ids: str) -> bytes:
    """What Spotlight 4.11.8's /stream sent for sentry-sdk events (shape recorded from the real one)."""
    chunks = []
    for n, trace_id in enumerate(trace_ids):
        header = {"event_id": f"e{n}", "trace": {"trace_id": trace_id}, "__spotlight_envelope_id": f"01a2-{n}"}
        item = [{"type": "event", "content_type": "application/json", "length": 99}]
        item.append({"event_id": f"e{n}", "level": "error", "contexts": {"trace": {"trace_id": trace_id}}})
        chunks.append(f"event: application/x-sentry-envelope\ndata: {json.dumps([header, [item]])}\n\n")
    return "".join(chunks).encode()


def test_spotlight_events_are_found_by_trace_id_in_its_stream(lab_check: ModuleType) -> None:
    lines = spotlight_stream("a" * 32, TRACE).decode().splitlines(keepends=True)
    assert [e["event_id"] for e in lab_check.spotlight_events(lines, TRACE)] == ["e1"]


def test_spotlight_items_that_are_not_error_events_are_skipped(lab_check: ModuleType) -> None:
    envelope = [{}, [[{"type": "transaction"}, {"contexts": {"trace": {"trace_id": TRACE}}}]]]
    assert lab_check.envelope_events(envelope) == []


def test_delivery_counts_missing_and_duplicated_access_lines(lab_check: ModuleType) -> None:
    ok, detail = lab_check.delivery_summary(["a", "b", "c"], {"a": 1, "b": 2})
    assert not ok
    assert detail.startswith("2/3 access lines in Elasticsearch; 1 missing, 1 duplicated")


def test_duplicates_alone_do_not_fail_delivery(lab_check: ModuleType) -> None:
    # At-least-once: a chunk re-sent after a Fluent Bit crash arrives twice; nothing was lost.
    assert lab_check.delivery_summary(["a", "b"], {"a": 2, "b": 1})[0] is True


def test_es_hits_are_the_sources(lab_check: ModuleType) -> None:
    payload = {"hits": {"total": {"value": 1}, "hits": [{"_id": "x", "_source": {"trace.id": TRACE}}]}}
    assert lab_check.es_hits(payload) == [{"trace.id": TRACE}]


def test_kibana_link_opens_discover_on_the_data_view_filtered_to_the_trace(lab_check: ModuleType) -> None:
    url = lab_check.kibana_discover_url("http://localhost:5601", TRACE)
    assert url.startswith("http://localhost:5601/app/discover#/?")
    assert "dataViewId:svc-logs" in url
    assert TRACE in url


def test_poll_returns_the_first_answer_and_gives_up_at_the_deadline(lab_check: ModuleType) -> None:
    clock = FakeClock()
    answers = iter([None, None, "found"])
    assert lab_check.poll(lambda: next(answers), 10, 1, clock, clock.sleep) == "found"
    assert lab_check.poll(lambda: None, 5, 1, clock, clock.sleep) is None


def test_poll_treats_connection_errors_as_not_yet(lab_check: ModuleType) -> None:
    clock = FakeClock()
    calls: Iterator[OSError | str] = iter([OSError("refused"), "up"])

    def probe() -> str:
        result = next(calls)
        if isinstance(result, OSError):
            raise result
        return result

    assert lab_check.poll(probe, 10, 1, clock, clock.sleep) == "up"


def test_table_has_one_aligned_line_per_signal(lab_check: ModuleType) -> None:
    rows = [
        lab_check.Row("trace (Jaeger)", True, "services: svc", "http://x/trace/1"),
        lab_check.Row("exemplar", False, "-", "http://y"),
    ]
    lines = lab_check.render(rows).splitlines()
    assert len(lines) == 4
    found_column = lines[0].index("found")
    assert [line[found_column:].split()[0] for line in lines[2:]] == ["yes", "NO"]
    assert [
        line.rstrip().endswith(url) for line, url in zip(lines[2:], ["http://x/trace/1", "http://y"], strict=False)
    ] == [True] * 2


def fake_lab(sentry_finds: bool = True, refused: int = 0) -> AbstractContextManager[ScriptedServer]:
    """One server answering for every lab backend; it remembers the trace ids lab-check sent to svc.

    `refused`: how many of the delivery probes' access lines Elasticsearch lacks (as if it refused them)."""
    seen: dict[str, str] = {}
    probes: list[str] = []

    def respond(request: HttpRequest) -> Reply:  # noqa: PLR0911 -- a router: one return per backend
        path = request.path
        if path.startswith("/fault"):
            seen["trace"] = request.headers["traceparent"].split("-")[1]
            return Reply(
                500, {"title": "Internal Server Error"}, {"traceresponse": f"00-{seen['trace']}-00f067aa0ba902b7-01"}
            )
        if path.startswith("/links/"):
            probes.append(request.headers["traceparent"].split("-")[1])
            return Reply(404, {"title": "Not Found"}, {"traceresponse": f"00-{probes[-1]}-00f067aa0ba902b7-01"})
        trace = seen.get("trace", "none")
        if path.startswith("/api/v3/traces/"):
            return Reply(
                200,
                {
                    "result": {
                        "resourceSpans": [
                            {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]}}
                        ]
                    }
                },
            )
        if path.startswith("/svc-logs/_search") and "aggs" in request.json():
            held = probes[refused:]
            assert request.json()["query"]["bool"]["filter"][1] == {"terms": {"trace.id": probes}}
            return Reply(200, {"aggregations": {"per_trace": {"buckets": [{"key": t, "doc_count": 1} for t in held]}}})
        if path.startswith("/svc-logs/_search"):
            assert request.json()["query"] == {"term": {"trace.id": trace}}
            return Reply(200, {"hits": {"hits": [{"_source": {"trace.id": trace, "log.level": "error"}}]}})
        if path.startswith("/api/v1/query_exemplars"):
            return Reply(200, {"data": [{"exemplars": [{"labels": {"trace_id": trace}}]}]})
        if path.startswith("/stream"):
            return Reply(200, spotlight_stream("b" * 32, *([trace] if sentry_finds else [])))
        if path.startswith("/api/status"):
            return Reply(200, {"status": {"overall": {"level": "available"}}})
        return Reply(200, {"status": "ok"})

    return ScriptedServer(respond)


def run_against(lab_check: ModuleType, server: ScriptedServer) -> tuple[int, str]:
    env = {f"LAB_{name.upper()}_URL": server.url for name in lab_check.ENDPOINTS}
    clock = FakeClock()
    out = io.StringIO()
    with redirect_stdout(out):
        code = lab_check.main(["--wait", "5", "--timeout", "5"], env, clock, clock.sleep)
    return code, out.getvalue()


def test_a_healthy_lab_passes_with_every_signal_found(lab_check: ModuleType) -> None:
    with fake_lab() as server:
        code, table = run_against(lab_check, server)
    assert code == 0, table
    assert table.count(" yes ") == 6
    assert " NO " not in table
    assert "20/20 access lines in Elasticsearch; 0 missing, 0 duplicated" in table


def test_a_refused_log_line_fails_the_check_and_is_counted(lab_check: ModuleType) -> None:
    with fake_lab(refused=1) as server:
        code, table = run_against(lab_check, server)
    assert code == 1
    assert re.search(r"log delivery \(Elasticsearch\)\s+NO\s+19/20 access lines in Elasticsearch; 1 missing", table)


def test_each_delivery_probe_has_a_trace_of_its_own(lab_check: ModuleType) -> None:
    with fake_lab() as server:
        run_against(lab_check, server)
    traces = [r.headers["traceparent"].split("-")[1] for r in server.requests() if r.path.startswith("/links/")]
    assert len(traces) == len(set(traces)) == lab_check.DELIVERY_PROBES


def test_the_failing_request_carries_a_tag_and_our_traceparent(lab_check: ModuleType) -> None:
    with fake_lab() as server:
        run_against(lab_check, server)
    (fault,) = [r for r in server.requests() if r.path.startswith("/fault")]
    assert re.fullmatch(r"/fault\?tag=lab-check-[0-9a-f]{8}", fault.path)
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fault.headers["traceparent"])


def test_every_health_endpoint_is_asked_before_the_check(lab_check: ModuleType) -> None:
    with fake_lab() as server:
        run_against(lab_check, server)
    first_fault = next(i for i, r in enumerate(server.requests()) if r.path.startswith("/fault"))
    asked = {r.path for r in server.requests()[:first_fault]}
    assert {path for _, path in lab_check.ENDPOINTS.values()} <= asked


def test_a_missing_sentry_event_fails_the_check_and_says_where(lab_check: ModuleType) -> None:
    with fake_lab(sentry_finds=False) as server:
        code, table = run_against(lab_check, server)
    assert code == 1
    assert re.search(r"error event \(Spotlight\)\s+NO", table), table


def test_an_unreachable_lab_fails_after_the_wait(lab_check: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    env = {f"LAB_{name.upper()}_URL": "http://127.0.0.1:9" for name in lab_check.ENDPOINTS}
    clock = FakeClock()
    assert lab_check.main(["--wait", "3"], env, clock, clock.sleep) == 1
    assert "still not healthy" in capsys.readouterr().err


def test_script_is_executable_and_runs_with_plain_python(lab_check: ModuleType) -> None:
    text = LAB_CHECK.read_text()
    assert text.startswith("#!/usr/bin/env python3\n")
    assert LAB_CHECK.stat().st_mode & 0o111
    imports = set(re.findall(r"^(?:import|from) (\w+)", text, re.MULTILINE))
    assert imports <= {
        "__future__",
        "argparse",
        "json",
        "os",
        "secrets",
        "sys",
        "time",
        "urllib",
        "collections",
        "dataclasses",
        "typing",
    }, "stdlib only: it runs on the host, outside the project venv"
