"""deploy/fluent-bit keeps the settings the lab depends on (each one a known Fluent Bit -> Elasticsearch trap)."""

from __future__ import annotations

from typing import Any

import pytest

from .compose_model import published
from .files import FLUENT_BIT, services
from .fluentbit import Pipeline, flag


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(FLUENT_BIT)


@pytest.fixture(scope="module")
def es(pipeline: Pipeline) -> dict[str, Any]:
    return pipeline.es_output("svc")


def test_es_output_suppresses_the_type_name_elasticsearch_8_rejects(es: dict[str, Any]) -> None:
    assert flag(es["suppress_type_name"]) is True


def test_es_output_retries_forever(es: dict[str, Any]) -> None:
    # `false` means no limit; a number would drop chunks after that many failed flushes.
    assert es["retry_limit"] is False or str(es["retry_limit"]).lower() in {"false", "no_limits"}


def test_es_output_disk_buffer_is_capped(es: dict[str, Any]) -> None:
    assert str(es["storage.total_limit_size"]).upper().endswith(("M", "G"))


def test_chunks_are_buffered_on_disk_in_a_mounted_volume(pipeline: Pipeline) -> None:
    (forward,) = [i for i in pipeline.inputs if i["name"] == "forward"]
    assert forward["storage.type"] == "filesystem"
    path = str(pipeline.service["storage.path"]).rstrip("/")
    assert any(str(v).endswith(f":{path}") for v in services()["fluent-bit"]["volumes"])


def test_forward_input_listens_where_the_logging_driver_dials(pipeline: Pipeline) -> None:
    (forward,) = [i for i in pipeline.inputs if i["name"] == "forward"]
    port = int(forward["port"])
    assert any(p.host_port == p.container_port == port for p in published(services()["fluent-bit"]))


def test_health_endpoint_is_on_and_published_for_lab_check(pipeline: Pipeline) -> None:
    service = pipeline.service
    assert flag(service["http_server"]) is True
    assert flag(service["health_check"]) is True
    port = int(service["http_port"])
    assert any(p.host_port == port for p in published(services()["fluent-bit"]))


def test_partial_messages_are_joined_by_the_first_filter(pipeline: Pipeline) -> None:
    # The multiline filter re-emits into the head of the pipeline, so any filter before it would run twice.
    first = pipeline.filters[0]
    assert (first["name"], first["mode"]) == ("multiline", "partial_message")


def test_compose_runs_the_config_these_tests_read() -> None:
    svc = services()["fluent-bit"]
    assert svc["command"] == ["-c", "/fluent-bit/etc/svc/fluent-bit.yaml"]
    assert "./deploy/fluent-bit:/fluent-bit/etc/svc:ro" in svc["volumes"]
