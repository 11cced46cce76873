"""deploy/elasticsearch/: the index template matches the log contract and cannot be broken; retention is bounded."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

import pytest

from tests.support.log_contract import all_fields

from .es_mapping import flat_properties, object_conflicts
from .files import FLUENT_BIT, ILM_POLICY, INDEX_TEMPLATE, load_json
from .fluentbit import Pipeline

# The contract's log fields and JSON types (/tmp/svc-contract.md, "Logs"), plus what the lab adds: svc's listener
# lines (server.address/server.port/labels.listener) and the container fields Fluent Bit lifts from the driver.
CONTRACT_FIELDS: dict[str, type] = {
    **all_fields(),
    "container.id": str,
    "container.name": str,
    # Added by the Kubernetes Fluent Bit pipelines (deploy/k8s/logging), from the kubelet's log file name.
    "kubernetes.pod.name": str,
    "kubernetes.namespace": str,
    "kubernetes.node.name": str,
}
ES_TYPES_FOR = {str: {"keyword", "text", "date"}, int: {"long"}}
LUCENE_TERM_BYTES = 32766  # a longer keyword term makes Elasticsearch reject the whole document


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    data: dict[str, Any] = load_json(INDEX_TEMPLATE)
    return data


@pytest.fixture(scope="module")
def properties(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return flat_properties(template["template"]["mappings"])


def test_template_targets_the_data_stream_fluent_bit_writes(template: dict[str, Any]) -> None:
    output = Pipeline(FLUENT_BIT).es_output("svc")
    assert any(fnmatch.fnmatchcase(str(output["index"]), p) for p in template["index_patterns"])
    assert "data_stream" in template
    assert output["write_operation"] == "create", "data streams accept op_type create only"


def test_template_declares_every_contract_field_with_a_matching_type(properties: dict[str, dict[str, Any]]) -> None:
    wrong = {
        name: properties.get(name, {}).get("type")
        for name, json_type in CONTRACT_FIELDS.items()
        if properties.get(name, {}).get("type") not in ES_TYPES_FOR[json_type]
    }
    assert wrong == {}


def test_template_declares_nothing_outside_the_contract(properties: dict[str, dict[str, Any]]) -> None:
    assert set(properties) - set(CONTRACT_FIELDS) == set()


def test_timestamp_is_a_date(properties: dict[str, dict[str, Any]]) -> None:
    assert properties["@timestamp"]["type"] == "date"


def test_unknown_fields_are_kept_but_cannot_change_the_mapping(template: dict[str, Any]) -> None:
    # dynamic false: an unexpected field stays in _source, unindexed, instead of guessing a type that a later line
    # could contradict (strict would reject the whole line, and Fluent Bit would retry that chunk forever).
    assert template["template"]["mappings"]["dynamic"] is False


def test_no_field_is_both_a_value_and_an_object(properties: dict[str, dict[str, Any]]) -> None:
    assert object_conflicts(list(properties)) == []


def test_keyword_fields_stay_under_lucenes_term_limit(properties: dict[str, dict[str, Any]]) -> None:
    # ignore_above counts characters; a UTF-8 character is at most 4 bytes.
    unbounded = {
        name: spec.get("ignore_above")
        for name, spec in properties.items()
        if spec["type"] == "keyword" and not 0 < int(spec.get("ignore_above", 0)) <= LUCENE_TERM_BYTES // 4
    }
    assert unbounded == {}


def test_numeric_fields_ignore_a_malformed_value_instead_of_rejecting_the_line(
    properties: dict[str, dict[str, Any]],
) -> None:
    assert {n for n, s in properties.items() if s["type"] == "long" and s.get("ignore_malformed") is not True} == set()


def test_template_hands_its_indices_to_the_retention_policy(template: dict[str, Any]) -> None:
    settings = template["template"]["settings"]
    assert settings["index.lifecycle.name"] == "svc-logs"
    assert settings["index.number_of_replicas"] == 0, "a single node can never place a replica"


def _days(age: str) -> float:
    match = re.fullmatch(r"(\d+)(d|h|m|s|ms)", age)
    assert match, age
    return int(match[1]) / {"d": 1, "h": 24, "m": 1440, "s": 86400, "ms": 86_400_000}[match[2]]


def test_retention_deletes_logs_within_a_week_and_rolls_over_by_size() -> None:
    phases = load_json(ILM_POLICY)["policy"]["phases"]
    assert "delete" in phases["delete"]["actions"]
    assert 0 < _days(phases["delete"]["min_age"]) <= 7
    rollover = phases["hot"]["actions"]["rollover"]
    assert "max_primary_shard_size" in rollover
    assert "max_age" in rollover
