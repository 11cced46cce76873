"""Our configs in a real Fluent Bit (FLUENT_BIT=<path to fluent-bit>; skipped without one, CI included).

svc's real lines go in over the forward protocol with acknowledgements (as Docker's driver sends them with
`fluentd-request-ack`) and come out at a recording Elasticsearch bulk endpoint: the documents must equal the ones
tests/lab/fluentbit.py (the emulation the other lab tests trust) makes of the same records, and the behaviours
docs/lab.md states (health, refused documents, 409s) are the ones this binary shows.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.http_backend import ScriptedServer
from tests.peers.process import wait_until

from .files import FLUENT_BIT
from .fluentbit import Event, Pipeline
from .fluentd_driver import DOCKER_LINE_LIMIT, wrap
from .forward import ForwardClient
from .real_fluent_bit import CONFIGS, BulkRecorder, RunningFluentBit, binary, kill, run

STAMP = (1_795_629_323, 0)
# Retries within seconds, not minutes: changes when a retry happens, not what counts as one.
FAST_RETRIES = {"scheduler.base": 1, "scheduler.cap": 2}


@pytest.fixture(autouse=True)
def _needs_fluent_bit() -> None:
    binary()


@pytest.fixture
def es() -> Iterator[tuple[ScriptedServer, BulkRecorder]]:
    recorder = BulkRecorder()
    with ScriptedServer(recorder) as server:
        yield server, recorder


def port_of(server: ScriptedServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def send(fb: RunningFluentBit, events: list[Event]) -> None:
    client = ForwardClient(fb.forward_port)
    try:
        for event in events:
            client.send(event.tag, event.time, event.record)
    finally:
        client.close()


def canonical(doc: dict[str, Any] | list[tuple[str, Any]]) -> str:
    return json.dumps(dict(doc), sort_keys=True)


def output_metrics(fb: RunningFluentBit) -> dict[str, Any]:
    (es_metrics,) = [v for k, v in fb.metrics()["output"].items() if k.startswith("es")]
    return dict(es_metrics)


def test_real_fluent_bit_makes_the_documents_the_emulation_makes(
    tmp_path: Path, svc_lines: list[str], es: tuple[ScriptedServer, BulkRecorder]
) -> None:
    server, recorder = es
    long_record = json.loads(next(line for line in svc_lines if "error.stack_trace" in line))
    long_record["message"] = "é" * DOCKER_LINE_LIMIT  # Docker's cut falls inside a character
    lines = [*svc_lines, "Traceback (most recent call last): boom", json.dumps(long_record, ensure_ascii=False)]
    events = [e for line in lines for e in wrap(line, STAMP)]
    expected = sorted(canonical(doc) for doc in Pipeline(FLUENT_BIT).ship(events))
    with run("lab", tmp_path, port_of(server)) as fb:
        send(fb, events)
        wait_until(
            lambda: len(recorder.documents()) >= len(expected), 30, "every document", alive=fb.process.check_alive
        )
    assert sorted(canonical(doc) for doc in recorder.documents()) == expected


def test_bulk_actions_are_create_on_the_data_stream_without_a_type(
    tmp_path: Path, svc_lines: list[str], es: tuple[ScriptedServer, BulkRecorder]
) -> None:
    server, recorder = es
    with run("lab", tmp_path, port_of(server)) as fb:
        send(fb, wrap(svc_lines[0], STAMP))
        wait_until(lambda: len(recorder.documents()) >= 1, 30, "a bulk request", alive=fb.process.check_alive)
    assert recorder.bulks is not None
    assert {json.dumps(action) for bulk in recorder.bulks for action, _ in bulk} == {
        json.dumps({"create": {"_index": "svc-logs"}})
    }
    assert {(r.method, r.path.split("?")[0]) for r in server.requests()} == {("POST", "/_bulk")}  # never GET /


def test_health_stays_ok_while_elasticsearch_is_unreachable(tmp_path: Path, svc_lines: list[str]) -> None:
    # Why docs/lab.md no longer claims /api/v1/health turns unhealthy: with retry_limit off no retry ever fails.
    with ScriptedServer(BulkRecorder()) as server:
        closed = port_of(server)
    with run("lab", tmp_path, closed, service=FAST_RETRIES) as fb:
        send(fb, wrap(svc_lines[0], STAMP))
        wait_until(lambda: output_metrics(fb)["retries"] >= 3, 60, "three retries", alive=fb.process.check_alive)
        status, body = fb.health()
        metrics = output_metrics(fb)
    assert (status, body) == (200, "ok")
    assert (metrics["errors"], metrics["retries_failed"]) == (0, 0)


def test_one_refused_document_is_dropped_silently_and_the_rest_delivered(tmp_path: Path, svc_lines: list[str]) -> None:
    # Why lab-check counts delivery: Fluent Bit takes a bulk with one 201 as a success and logs nothing.
    refused = json.loads(svc_lines[1])["message"]
    recorder = BulkRecorder(status=lambda doc: 400 if doc.get("message") == refused else 201)
    with ScriptedServer(recorder) as server, run("lab", tmp_path, port_of(server), service=FAST_RETRIES) as fb:
        send(fb, [e for line in svc_lines[:3] for e in wrap(line, STAMP)])
        wait_until(lambda: len(recorder.documents()) >= 1, 30, "a bulk request", alive=fb.process.check_alive)
        wait_until(lambda: output_metrics(fb)["proc_records"] >= 3, 30, "the chunk counted as sent")
        metrics = output_metrics(fb)
        log = fb.process.log_tail(200)
    assert recorder.bulks is not None
    assert len(recorder.bulks) == 1, "not retried"
    assert (metrics["retries"], metrics["dropped_records"]) == (0, 0)
    assert refused not in log


def test_a_bulk_whose_every_item_is_a_409_is_retried_forever(tmp_path: Path, svc_lines: list[str]) -> None:
    # Why there is no generate_id: a re-sent chunk whose documents all exist would answer 409 for each, and out_es
    # treats a bulk without a single 200/201 item as failed.
    recorder = BulkRecorder(status=lambda _doc: 409)
    with ScriptedServer(recorder) as server, run("lab", tmp_path, port_of(server), service=FAST_RETRIES) as fb:
        send(fb, wrap(svc_lines[0], STAMP))
        wait_until(
            lambda: len(recorder.bulks or []) >= 3, 60, "the same bulk three times", alive=fb.process.check_alive
        )
    assert recorder.bulks is not None
    assert len({json.dumps(bulk) for bulk in recorder.bulks}) == 1


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_each_config_starts_in_the_real_fluent_bit(tmp_path: Path, name: str) -> None:
    # --dry-run does not check plugin options; a real start does.
    with ScriptedServer(BulkRecorder()) as server, run(name, tmp_path, port_of(server)) as fb:
        fb.process.check_alive()
        assert "error" not in fb.process.log_tail(200).lower()


def test_the_rest_of_a_line_after_flush_ms_is_a_second_document_as_emulated(
    tmp_path: Path, es: tuple[ScriptedServer, BulkRecorder]
) -> None:
    server, recorder = es
    pipeline = Pipeline(FLUENT_BIT)
    flush_s = int(pipeline.filters[0]["flush_ms"]) / 1000
    events = wrap("y" * (2 * DOCKER_LINE_LIMIT + 100), STAMP)
    events[2].arrival = 2 * flush_s
    expected = sorted(canonical(doc) for doc in pipeline.ship(events))
    with run("lab", tmp_path, port_of(server)) as fb:
        send(fb, events[:2])
        wait_until(
            lambda: len(recorder.documents()) >= 1, 2 * flush_s + 5, "the first half", alive=fb.process.check_alive
        )
        send(fb, events[2:])
        wait_until(lambda: len(recorder.documents()) >= 2, 10, "the second half", alive=fb.process.check_alive)
    assert len(expected) == 2
    assert sorted(canonical(doc) for doc in recorder.documents()) == expected


def test_with_time_keep_the_record_time_is_sent_once_as_svc_wrote_it(
    tmp_path: Path, svc_lines: list[str], es: tuple[ScriptedServer, BulkRecorder]
) -> None:
    server, recorder = es

    def keep_time(file_name: str, doc: dict[str, Any]) -> None:
        if file_name == "parsers.yaml":
            doc["parsers"][0]["time_keep"] = True

    with run("lab", tmp_path, port_of(server), edit=keep_time) as fb:
        send(fb, wrap(svc_lines[0], STAMP))
        wait_until(lambda: len(recorder.documents()) >= 1, 30, "the document", alive=fb.process.check_alive)
    (doc,) = recorder.documents()
    assert doc["@timestamp"] == json.loads(svc_lines[0])["@timestamp"]


def test_a_crash_during_a_bulk_request_delivers_that_chunk_twice(tmp_path: Path, svc_lines: list[str]) -> None:
    # At-least-once: the chunk stays on disk until Elasticsearch answers; a SIGKILL before the answer re-sends it.
    answered = threading.Event()
    first = threading.Event()

    def slow_first(_doc: dict[str, Any]) -> int:
        if not first.is_set():
            first.set()
            answered.wait(10)  # hold the first bulk open while Fluent Bit is killed
        return 201

    recorder = BulkRecorder(status=slow_first)
    lines = svc_lines[:5]
    with ScriptedServer(recorder) as server:
        with run("lab", tmp_path, port_of(server)) as fb:
            send(fb, [e for line in lines for e in wrap(line, STAMP)])
            wait_until(first.is_set, 30, "the first bulk request", alive=fb.process.check_alive)
            kill(fb)
        answered.set()
        with run("lab", tmp_path, port_of(server)) as fb:
            wait_until(lambda: len(recorder.documents()) >= 2 * len(lines), 30, "the re-sent chunk")
    messages = [doc["message"] for doc in recorder.documents()]
    assert sorted(messages) == sorted(json.loads(line)["message"] for line in lines for _ in range(2))


def test_kubernetes_documents_keep_svcs_fields_and_none_of_the_cri_parsers(
    tmp_path: Path, svc_lines: list[str], es: tuple[ScriptedServer, BulkRecorder]
) -> None:
    # The sidecar config tails the kubelet's CRI file; the real Fluent Bit 4.2.2 kept the runtime's "time" in
    # every document until svc-pipeline.yaml removed it.
    server, recorder = es
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "0.log").write_text("".join(f"2026-12-01T18:00:00.123456789Z stdout F {line}\n" for line in svc_lines[:3]))
    with run("sidecar", tmp_path, port_of(server)) as fb:
        wait_until(lambda: len(recorder.documents()) >= 3, 30, "three documents", alive=fb.process.check_alive)
    added = {"kubernetes.pod.name", "kubernetes.namespace", "kubernetes.node.name", "container.name"}
    for line, doc in zip(svc_lines[:3], recorder.documents(), strict=True):
        assert {k: v for k, v in doc.items() if k not in added} == json.loads(line)
        assert doc["kubernetes.node.name"] == "node-1"
