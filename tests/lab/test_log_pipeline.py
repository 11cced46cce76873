"""Contract: svc's real log lines, wrapped as Docker's fluentd driver wraps them, pass through OUR Fluent Bit filters
(read from deploy/fluent-bit/) and become documents whose every field has the type the index template declares."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from .es_mapping import document_errors, flat_properties
from .files import FLUENT_BIT, INDEX_TEMPLATE, load_json
from .fluentbit import Event, Pipeline, UnmodelledError
from .fluentd_driver import DOCKER_LINE_LIMIT, wrap

STAMP = (1_795_629_323, 0)  # arrival time the driver stamps; the parser must replace it with svc's @timestamp


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(FLUENT_BIT)


@pytest.fixture(scope="module")
def properties() -> dict[str, dict[str, Any]]:
    return flat_properties(load_json(INDEX_TEMPLATE)["template"]["mappings"])


def ship_lines(pipeline: Pipeline, lines: list[str]) -> list[dict[str, Any]]:
    """Lines -> driver records -> our filters -> es output; as dicts (after checking for duplicate keys)."""
    events: list[Event] = [e for line in lines for e in wrap(line, STAMP)]
    docs = pipeline.ship(events)
    for doc in docs:
        keys = [k for k, _ in doc]
        assert len(keys) == len(set(keys)), f"duplicate keys in {keys}"
    return [dict(doc) for doc in docs]


def test_real_capture_has_access_app_server_and_error_lines(svc_lines: list[str]) -> None:
    records = [json.loads(line) for line in svc_lines]
    datasets = {r["event.dataset"] for r in records}
    assert {"svc.access", "svc.app", "svc.server"} <= datasets
    assert any("error.stack_trace" in r for r in records), "the /fault request must log an error with its stack"
    assert any("trace.id" in r for r in records)


def test_every_real_log_line_becomes_a_document_the_index_template_accepts(
    svc_lines: list[str], pipeline: Pipeline, properties: dict[str, dict[str, Any]]
) -> None:
    events = [e for line in svc_lines for e in wrap(line, STAMP)]
    problems = {
        json.dumps(dict(doc))[:160]: errors
        for doc in pipeline.ship(events)
        if (errors := document_errors(doc, properties))
    }
    assert problems == {}


def test_shipped_documents_carry_svcs_own_timestamp(svc_lines: list[str], pipeline: Pipeline) -> None:
    docs = ship_lines(pipeline, svc_lines)
    assert [d["@timestamp"] for d in docs] == [json.loads(line)["@timestamp"] for line in svc_lines]


def test_shipped_documents_keep_every_svc_field_and_value(svc_lines: list[str], pipeline: Pipeline) -> None:
    docs = ship_lines(pipeline, svc_lines)
    for line, doc in zip(svc_lines, docs, strict=True):
        lifted = {k: v for k, v in doc.items() if not k.startswith("container.")}
        assert lifted == json.loads(line)


def test_driver_metadata_becomes_ecs_container_fields(svc_lines: list[str], pipeline: Pipeline) -> None:
    doc = ship_lines(pipeline, svc_lines[:1])[0]
    assert doc["container.name"] == "/svc-lab-svc-1"
    assert doc["container.id"] == "4f1c" * 16
    assert not {"log", "source", "container_id", "container_name"} & doc.keys()


def test_a_line_docker_split_into_partial_messages_is_rejoined_before_parsing(
    svc_lines: list[str], pipeline: Pipeline, properties: dict[str, dict[str, Any]]
) -> None:
    error_line = json.loads(next(line for line in svc_lines if "error.stack_trace" in line))
    error_line["error.stack_trace"] = error_line["error.stack_trace"] * (3 * DOCKER_LINE_LIMIT // 100 + 1)
    long_line = json.dumps(error_line)
    assert len(wrap(long_line, STAMP)) >= 3, "the line must be long enough for Docker to split it"
    docs = pipeline.ship(wrap(long_line, STAMP))
    assert len(docs) == 1
    assert document_errors(docs[0], properties) == []
    assert dict(docs[0])["error.stack_trace"] == error_line["error.stack_trace"]


def test_a_line_that_is_not_json_is_indexed_as_an_unparsed_message(
    pipeline: Pipeline, properties: dict[str, dict[str, Any]]
) -> None:
    (doc,) = pipeline.ship(wrap("Traceback (most recent call last): boom", STAMP))
    assert document_errors(doc, properties) == []
    assert dict(doc)["message"] == "Traceback (most recent call last): boom"
    assert dict(doc)["event.dataset"] == "svc.unparsed"
    assert dict(doc)["@timestamp"] == "2026-11-25T17:55:23.000Z"  # arrival time, the line had none


def _copy_config(tmp_path: Path) -> Path:
    for path in FLUENT_BIT.parent.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path / FLUENT_BIT.name


def test_keeping_the_timestamp_in_the_parser_sends_svcs_own_string_once(tmp_path: Path, svc_lines: list[str]) -> None:
    # The real out_es keeps the last copy of a key: time_keep on means svc's text, once (not two @timestamps).
    config = _copy_config(tmp_path)
    parsers = yaml.safe_load((tmp_path / "parsers.yaml").read_text())
    parsers["parsers"][0]["time_keep"] = True
    (tmp_path / "parsers.yaml").write_text(yaml.safe_dump(parsers))
    (doc,) = Pipeline(config).ship(wrap(svc_lines[0], STAMP))
    assert [k for k, _ in doc].count("@timestamp") == 1
    assert dict(doc)["@timestamp"] == json.loads(svc_lines[0])["@timestamp"]


def test_an_unparsable_timestamp_reaches_elasticsearch_as_written(pipeline: Pipeline, svc_lines: list[str]) -> None:
    # Fluent Bit logs `invalid time format` and keeps the key; the output's own @timestamp loses to it.
    record = json.loads(svc_lines[0])
    record["@timestamp"] = "2026-12-01 18:00:00"
    (doc,) = pipeline.ship(wrap(json.dumps(record), STAMP))
    assert [k for k, _ in doc].count("@timestamp") == 1
    assert dict(doc)["@timestamp"] == "2026-12-01 18:00:00"


def test_docker_splits_on_raw_bytes_and_the_join_restores_the_characters(
    svc_lines: list[str], pipeline: Pipeline
) -> None:
    record = json.loads(svc_lines[0])
    record["message"] = "x" + "é" * DOCKER_LINE_LIMIT  # two bytes each: a 16 KiB cut falls inside one
    line = json.dumps(record, ensure_ascii=False)
    events = wrap(line, STAMP)
    assert any(isinstance(e.get("log"), bytes) for e in events), "a piece must end inside a character"
    (doc,) = pipeline.ship(events)
    assert dict(doc)["message"] == record["message"]


def test_the_rest_of_a_line_arriving_after_flush_ms_makes_a_second_document(pipeline: Pipeline) -> None:
    # Seen with the real Fluent Bit: pieces 1-2 are emitted when flush_ms runs out, piece 3 later on its own.
    flush_s = int(pipeline.filters[0]["flush_ms"]) / 1000
    line = "y" * (2 * DOCKER_LINE_LIMIT + 100)
    events = wrap(line, STAMP)
    assert len(events) == 3
    events[2].arrival = events[1].arrival + 2 * flush_s
    docs = [dict(doc) for doc in pipeline.ship(events)]
    assert [len(d["message"]) for d in docs] == [32_768, 100]
    assert {d["event.dataset"] for d in docs} == {"svc.unparsed"}


def test_the_drivers_key_order_does_not_change_the_document(svc_lines: list[str], pipeline: Pipeline) -> None:
    line = next(line for line in svc_lines if "error.stack_trace" in line)
    docs = [dict(pipeline.ship(wrap(line, STAMP, order=random.Random(seed)))[0]) for seed in range(8)]
    assert all(doc == docs[0] for doc in docs)


def test_the_emulation_refuses_a_filter_it_does_not_model(tmp_path: Path, svc_lines: list[str]) -> None:
    config = _copy_config(tmp_path)
    data = yaml.safe_load(config.read_text())
    data["pipeline"]["filters"].append({"name": "grep", "match": "svc*", "exclude": "log.level debug"})
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(UnmodelledError, match="grep"):
        Pipeline(config).ship(wrap(svc_lines[0], STAMP))
