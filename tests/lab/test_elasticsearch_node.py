"""Real svc log lines, shipped as our emulated Fluent Bit output sends them, indexed by a real Elasticsearch node.

The node is assembled from Maven Central (scripts/install-peers), which publishes neither ILM (x-pack-ilm) nor
Painless (lang-painless): the template is installed without its `index.lifecycle.name` setting, and the Kibana
runtime field's script cannot run here. Both limits are asserted below, so the day the node has them these tests say so.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from harness.service import base_env, service_process
from svc.exchange import LOGGED_VALUE_CHARS
from tests.peers.elasticsearch import ElasticsearchPeer

from .es_mapping import flat_properties
from .files import DEPLOY, FLUENT_BIT, INDEX_TEMPLATE, LAB_CHECK, load_json, load_script
from .fluentbit import Pipeline
from .fluentd_driver import wrap

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]  # the first test waits for the node to start

STAMP = (1_795_629_323, 0)
ILM_SETTING = "index.lifecycle.name"
LONG_PATH = "/x" * 2000  # 4,000 characters: under the head cap, over what svc copies into a log line


@pytest.fixture(scope="module")
def setup() -> ModuleType:
    return load_script(DEPLOY / "elasticsearch" / "setup.py", "es_setup_real")


@pytest.fixture(scope="module")
def output() -> dict[str, Any]:
    """The lab's Fluent Bit es output: which data stream it writes and with which bulk action."""
    return Pipeline(FLUENT_BIT).es_output("svc")


def without_ilm(template: dict[str, Any]) -> dict[str, Any]:
    """The template as this node can take it: ILM is not on Maven Central, so its one setting goes."""
    copy: dict[str, Any] = json.loads(json.dumps(template))
    del copy["template"]["settings"][ILM_SETTING]
    return copy


@pytest.fixture(scope="module")
def template_installed(elasticsearch: ElasticsearchPeer, setup: ModuleType) -> list[str]:
    """setup.py's template step, run against the node with the template minus its ILM setting."""
    steps = [(path, without_ilm(body)) for path, body in setup.plan() if path.startswith("/_index_template/")]
    done: list[str] = setup.install(elasticsearch.url, steps)
    return done


@pytest.fixture(scope="module")
def traced_svc_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """stdout of a real `python -m svc`: several requests of each kind (each its own trace), then SIGTERM."""
    env = base_env(tmp_path_factory.mktemp("svc"), FAULTS_ENABLED="true", LOG_LEVEL="debug")
    with service_process(env) as svc:
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            for n in range(3):
                slug = client.post("/links", json={"url": f"https://example.com/es/{n}"}).json()["slug"]
                client.get(f"/r/{slug}")
                client.get("/links/does-not-exist")
                client.post("/links", content=b"{broken", headers={"Content-Type": "application/json"})
                client.get("/fault", params={"tag": f"es-{n}"})
            client.get(LONG_PATH)
        svc.signal(signal.SIGTERM)
        assert svc.wait(20) == 0
        return [line for line in svc.text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def documents(traced_svc_lines: list[str]) -> list[dict[str, Any]]:
    """What the emulated Fluent Bit sends Elasticsearch for those lines (one document per line)."""
    return [dict(doc) for line in traced_svc_lines for doc in Pipeline(FLUENT_BIT).ship(wrap(line, STAMP))]


def post_bulk(node: ElasticsearchPeer, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """POST /_bulk as out_es sends it (NDJSON, action line then document), refreshed so a search sees it."""
    answer = node.client.post(
        "/_bulk?refresh=true",
        content="".join(json.dumps(line) + "\n" for line in lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def bulk(node: ElasticsearchPeer, action: str, index: str, docs: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``action`` line per document, naming ``index`` as out_es does."""
    return post_bulk(node, [part for doc in docs for part in ({action: {"_index": index}}, doc)])


@pytest.fixture(scope="module")
def indexed(
    elasticsearch: ElasticsearchPeer,
    template_installed: list[str],
    output: dict[str, Any],
    documents: list[dict[str, Any]],
) -> dict[str, Any]:
    """The bulk answer for every document, written with the output's own index and write_operation."""
    return bulk(elasticsearch, str(output["write_operation"]), str(output["index"]), documents)


def search(node: ElasticsearchPeer, index: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    status, answer = node.json("POST", f"/{index}/_search", body)
    assert status == 200, answer
    hits: list[dict[str, Any]] = answer["hits"]["hits"]
    return hits


def test_the_node_runs_as_a_non_root_user(elasticsearch: ElasticsearchPeer) -> None:
    status = Path(f"/proc/{elasticsearch.process.pid}/status").read_text()
    real_uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
    assert real_uid != "0"


def test_the_node_binds_http_and_transport_to_loopback_only(elasticsearch: ElasticsearchPeer) -> None:
    status, answer = elasticsearch.json("GET", "/_nodes/_local/http,transport")
    assert status == 200
    (node,) = answer["nodes"].values()
    bound = node["http"]["bound_address"] + node["transport"]["bound_address"]
    assert all(address.startswith("127.0.0.1:") for address in bound), bound


def test_the_node_loads_its_native_provider_with_debians_libzstd(elasticsearch: ElasticsearchPeer) -> None:
    # Without lib/platform/linux-x64/libzstd.so the node still starts, but with "native methods disabled".
    log = elasticsearch.process.log_path.read_text(errors="replace")
    assert "Using [jdk] native provider and native methods for [Linux]" in log
    assert "Unable to load native provider" not in log


def test_the_template_without_its_ilm_setting_is_accepted(template_installed: list[str]) -> None:
    assert template_installed == ["PUT /_index_template/svc-logs -> 200"]


def test_the_node_keeps_every_template_setting_but_the_ilm_one(
    elasticsearch: ElasticsearchPeer, template_installed: list[str]
) -> None:
    status, answer = elasticsearch.json("GET", "/_index_template/svc-logs")
    assert status == 200
    stored = answer["index_templates"][0]["index_template"]["template"]["settings"]["index"]
    declared = without_ilm(load_json(INDEX_TEMPLATE))["template"]["settings"]
    assert {f"index.{k}": v for k, v in stored.items()} == {k: str(v) for k, v in declared.items()}


def test_the_ilm_setting_is_what_a_node_without_ilm_rejects(elasticsearch: ElasticsearchPeer) -> None:
    # The lab's image has ILM; this node does not. Were it ever accepted here, the template could be tested whole.
    whole = {**load_json(INDEX_TEMPLATE), "index_patterns": ["svc-ilm-check*"]}  # overlaps no other template
    status, answer = elasticsearch.json("PUT", "/_index_template/svc-ilm-check", whole)
    assert status == 400
    assert f"unknown setting [{ILM_SETTING}]" in answer["error"]["reason"]


def test_setup_stops_with_a_clear_line_when_the_node_has_no_ilm(
    elasticsearch: ElasticsearchPeer,
    setup: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ELASTICSEARCH_URL", elasticsearch.url)
    assert setup.main() == 1
    assert "failed: PUT /_ilm/policy/svc-logs -> 400" in capsys.readouterr().err


def test_real_svc_lines_bulk_index_without_a_single_error(
    indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    failed = [item for item in indexed["items"] if item["create"]["status"] != 201]
    assert (indexed["errors"], failed, len(indexed["items"])) == (False, [], len(documents))


def test_the_data_stream_maps_every_field_with_the_declared_type_and_nothing_else(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    status, answer = elasticsearch.json("GET", "/svc-logs/_mapping")
    assert status == 200
    (backing,) = answer.values()
    mapped = {name: spec["type"] for name, spec in flat_properties(backing["mappings"]).items()}
    declared = {
        name: spec["type"] for name, spec in flat_properties(load_json(INDEX_TEMPLATE)["template"]["mappings"]).items()
    }
    assert backing["mappings"]["dynamic"] == "false"
    assert mapped == declared


def test_an_undeclared_field_is_kept_in_source_but_never_mapped(
    elasticsearch: ElasticsearchPeer, template_installed: list[str]
) -> None:
    doc = {"@timestamp": "2026-12-01T18:00:00.000Z", "message": "extra", "surprise.field": "x"}
    result = bulk(elasticsearch, "create", "svc-logs-dynamic-check", [doc])
    assert result["errors"] is False
    status, answer = elasticsearch.json("GET", "/svc-logs-dynamic-check/_mapping")
    assert status == 200
    (backing,) = answer.values()
    assert "surprise" not in backing["mappings"]["properties"]
    assert search(elasticsearch, "svc-logs-dynamic-check", {"query": {"term": {"surprise.field": "x"}}}) == []
    (hit,) = search(elasticsearch, "svc-logs-dynamic-check", {"query": {"match_all": {}}})
    assert hit["_source"]["surprise.field"] == "x"


def test_a_trace_id_search_finds_every_line_of_each_trace(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    per_trace = Counter(doc["trace.id"] for doc in documents if "trace.id" in doc)
    assert len(per_trace) >= 10, "the capture must span many traces"
    found = {
        trace: len(search(elasticsearch, "svc-logs", {"size": 100, "query": {"term": {"trace.id": trace}}}))
        for trace in per_trace
    }
    assert found == dict(per_trace)


def test_sorting_on_timestamp_returns_the_lines_in_time_order(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    body = {"size": 1000, "sort": [{"@timestamp": "desc"}], "_source": ["@timestamp"], "query": {"match_all": {}}}
    stamps = [hit["_source"]["@timestamp"] for hit in search(elasticsearch, "svc-logs", body)]
    assert stamps == sorted((doc["@timestamp"] for doc in documents), reverse=True)


def kql_of_saved_search() -> dict[str, Any]:
    """The saved search's KQL `field : ("a" or "b")`, as Kibana turns it into query DSL (a match per value)."""
    saved = load_json(DEPLOY / "kibana" / "saved-search.json")
    kuery = saved["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]["query"]
    assert kuery == {"query": 'log.level : ("error" or "critical")', "language": "kuery"}, "re-translate the query"
    values = [{"match": {"log.level": value}} for value in ("error", "critical")]
    return {"bool": {"should": values, "minimum_should_match": 1}}


def test_the_saved_search_query_finds_exactly_the_error_lines_newest_first(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    saved = load_json(DEPLOY / "kibana" / "saved-search.json")["attributes"]
    sort = [{field: order} for field, order in saved["sort"]]
    hits = search(elasticsearch, "svc-logs", {"size": 100, "query": kql_of_saved_search(), "sort": sort})
    expected = sorted(
        (d for d in documents if d.get("log.level") in {"error", "critical"}),
        key=lambda d: d["@timestamp"],
        reverse=True,
    )
    assert len(expected) >= 3, "the capture must hold the /fault errors"
    assert [hit["_source"] for hit in hits] == expected


def test_the_saved_search_columns_are_fields_the_node_serves(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    saved = load_json(DEPLOY / "kibana" / "saved-search.json")["attributes"]
    runtime = set(load_json(DEPLOY / "kibana" / "data-view.json")["data_view"]["runtimeFieldMap"])
    columns = [c for c in saved["columns"] if c not in runtime]
    status, caps = elasticsearch.json("GET", f"/svc-logs/_field_caps?fields={','.join(columns)}")
    assert status == 200
    leaves = {name for name, types in caps["fields"].items() if "object" not in types}
    assert leaves == set(columns)


def test_the_data_views_time_field_is_a_date_on_the_node(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    view = load_json(DEPLOY / "kibana" / "data-view.json")["data_view"]
    status, caps = elasticsearch.json("GET", f"/svc-logs/_field_caps?fields={view['timeFieldName']}")
    assert status == 200
    assert list(caps["fields"][view["timeFieldName"]]) == ["date"]


def test_the_url_formatted_fields_are_aggregatable_keywords(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    # The URL format renders the keyword's value, and the trace.sentry script reads doc['trace.id'] (doc values).
    view = load_json(DEPLOY / "kibana" / "data-view.json")["data_view"]
    stored = [name for name in view["fieldFormats"] if name not in view["runtimeFieldMap"]]
    assert stored == ["trace.id"]
    status, caps = elasticsearch.json("GET", "/svc-logs/_field_caps?fields=trace.id")
    assert status == 200
    assert caps["fields"]["trace.id"]["keyword"]["aggregatable"] is True


def test_the_runtime_field_script_cannot_run_here_without_painless(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    # lang-painless is not on Maven Central, so the data view's runtime field is checked only statically.
    runtime = load_json(DEPLOY / "kibana" / "data-view.json")["data_view"]["runtimeFieldMap"]
    status, answer = elasticsearch.json("POST", "/svc-logs/_search", {"runtime_mappings": runtime, "size": 1})
    assert status == 400
    assert "painless" in json.dumps(answer)


def test_a_long_url_path_arrives_cut_to_the_logged_bound_and_is_searchable(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    # svc cuts url.path to LOGGED_VALUE_CHARS, under the template's ignore_above: the cut value stays searchable.
    cut = LONG_PATH[:LOGGED_VALUE_CHARS]
    assert [d["url.path"] for d in documents if d.get("url.path", "").startswith("/x/x")] == [cut]
    body = {"query": {"term": {"url.path": cut}}, "_source": ["url.path"]}
    assert [hit["_source"]["url.path"] for hit in search(elasticsearch, "svc-logs", body)] == [cut]


def test_no_value_is_dropped_as_malformed_only_over_long_keywords_are_ignored(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any]
) -> None:
    # ignore_malformed and ignore_above keep a bad value out of the index silently; _ignored is where it shows.
    body = {"size": 1000, "query": {"exists": {"field": "_ignored"}}, "_source": False}
    ignored = {field for hit in search(elasticsearch, "svc-logs", body) for field in hit["_ignored"]}
    assert ignored <= {"url.path", "user_agent.original"}


def test_a_bulk_index_action_is_rejected_by_the_data_stream(
    elasticsearch: ElasticsearchPeer, template_installed: list[str], documents: list[dict[str, Any]]
) -> None:
    # Why the Fluent Bit output says write_operation: create.
    result = bulk(elasticsearch, "index", "svc-logs-index-check", documents[:1])
    (item,) = result["items"]
    assert item["index"]["status"] == 400
    assert "only write ops with an op_type of create are allowed in data streams" in item["index"]["error"]["reason"]


def test_a_resent_document_with_the_same_id_is_a_conflict_of_that_item_only(
    elasticsearch: ElasticsearchPeer, template_installed: list[str], documents: list[dict[str, Any]]
) -> None:
    # What a deterministic _id would make of Fluent Bit's at-least-once resends: the bulk succeeds, the copy is refused.
    first, second = documents[:2]
    lines = [
        {"create": {"_index": "svc-logs-resend-check", "_id": "line-1"}},
        first,
        {"create": {"_index": "svc-logs-resend-check", "_id": "line-1"}},
        first,
        {"create": {"_index": "svc-logs-resend-check", "_id": "line-2"}},
        second,
    ]
    answer = post_bulk(elasticsearch, lines)
    items = [(item["create"]["status"], item["create"].get("error", {}).get("type")) for item in answer["items"]]
    assert items == [(201, None), (409, "version_conflict_engine_exception"), (201, None)]
    assert len(search(elasticsearch, "svc-logs-resend-check", {"query": {"match_all": {}}})) == 2


def test_lab_checks_delivery_count_finds_each_access_line_once_and_misses_none(
    elasticsearch: ElasticsearchPeer, indexed: dict[str, Any], documents: list[dict[str, Any]]
) -> None:
    # scripts/lab-check's own query (event.dataset filter, terms aggregation on trace.id), against the real node.
    lab_check = load_script(LAB_CHECK, "lab_check_real_es")
    sent = [d["trace.id"] for d in documents if d.get("event.dataset") == "svc.access" and "trace.id" in d]
    assert len(sent) >= 10, "the capture must hold many requests"
    never_sent = "0" * 31 + "1"
    counts = lab_check.count_delivered(elasticsearch.url, [*sent, never_sent], lambda: 0.0, lambda _: None, 0)
    assert counts == dict.fromkeys(sent, 1)
    delivered, detail = lab_check.delivery_summary([*sent, never_sent], counts)
    assert (delivered, detail.split(";")[0]) == (False, f"{len(sent)}/{len(sent) + 1} access lines in Elasticsearch")
