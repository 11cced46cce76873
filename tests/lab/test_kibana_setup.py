"""deploy/kibana/setup.py against a recording stand-in for Kibana: its requests must match Kibana's HTTP APIs
(data views: POST /api/data_views/data_view and /api/data_views/default; saved objects: POST _import)."""

from __future__ import annotations

import email.parser
import email.policy
import json
from types import ModuleType
from typing import Any

import jsonschema
import pytest

from harness.http_backend import HttpRequest, Reply, ScriptedServer

from .es_mapping import flat_properties
from .files import DEPLOY, INDEX_TEMPLATE, load_json, load_script

JAEGER_UI = "http://localhost:16686"
SPOTLIGHT_UI = "http://localhost:8969"

# Kibana's create-data-view request body, transcribed from its OpenAPI spec (Data_views_create_data_view_request_object
# and the schemas it references): exactly these keys, data_view.title required. Closed here (additionalProperties
# false) so a typo in data-view.json fails the test instead of being silently ignored by Kibana.
CREATE_DATA_VIEW = {
    "type": "object",
    "required": ["data_view"],
    "additionalProperties": False,
    "properties": {
        "override": {"type": "boolean"},
        "data_view": {
            "type": "object",
            "required": ["title"],
            "additionalProperties": False,
            "properties": {
                "allowNoIndex": {"type": "boolean"},
                "fieldAttrs": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "count": {"type": "integer"},
                            "customDescription": {"type": "string", "maxLength": 300},
                            "customLabel": {"type": "string"},
                        },
                    },
                },
                "fieldFormats": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["id"],
                        "properties": {"id": {"type": "string"}, "params": {"type": "object"}},
                    },
                },
                "fields": {"type": "object"},
                "id": {"type": "string"},
                "name": {"type": "string"},
                "namespaces": {"type": "array", "items": {"type": "string"}},
                "runtimeFieldMap": {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "required": ["type", "script"],
                        "properties": {
                            "type": {"type": "string"},
                            "script": {"type": "object", "required": ["source"]},
                        },
                    },
                },
                "sourceFilters": {"type": "array"},
                "timeFieldName": {"type": "string"},
                "title": {"type": "string"},
                "type": {"type": "string"},
                "typeMeta": {"type": "object"},
                "version": {"type": "string"},
            },
        },
    },
}
SET_DEFAULT = {
    "type": "object",
    "required": ["data_view_id"],
    "additionalProperties": False,
    "properties": {"data_view_id": {"type": ["string", "null"]}, "force": {"type": "boolean"}},
}


@pytest.fixture(scope="module")
def setup() -> ModuleType:
    return load_script(DEPLOY / "kibana" / "setup.py", "kibana_setup")


def kibana(request: HttpRequest) -> Reply:
    if request.path == "/api/status":
        return Reply(200, {"status": {"overall": {"level": "available"}}})
    if request.path.startswith("/api/saved_objects/_import"):
        return Reply(200, {"success": True, "successCount": 1})
    return Reply(200, {"data_view": {"id": "svc-logs"}, "acknowledged": True})


@pytest.fixture(scope="module")
def recorded(setup: ModuleType) -> list[HttpRequest]:
    with ScriptedServer(kibana) as server:
        setup.provision(server.url, JAEGER_UI, SPOTLIGHT_UI)
    return list(server.requests())


def by_path(requests: list[HttpRequest], prefix: str) -> HttpRequest:
    (found,) = [r for r in requests if r.path.startswith(prefix)]
    return found


def test_every_request_carries_kbn_xsrf(recorded: list[HttpRequest]) -> None:
    assert recorded
    assert all(r.headers.get("kbn-xsrf") for r in recorded)


def test_calls_only_kibanas_data_view_and_import_endpoints_with_post(recorded: list[HttpRequest]) -> None:
    assert [(r.method, r.path) for r in recorded] == [
        ("POST", "/api/data_views/data_view"),
        ("POST", "/api/data_views/default"),
        ("POST", "/api/saved_objects/_import?overwrite=true"),
    ]


def test_data_view_body_matches_kibanas_create_schema(recorded: list[HttpRequest]) -> None:
    request = by_path(recorded, "/api/data_views/data_view")
    assert request.headers["content-type"] == "application/json"
    jsonschema.validate(request.json(), CREATE_DATA_VIEW)


def test_data_view_covers_the_log_data_stream_by_timestamp(recorded: list[HttpRequest]) -> None:
    view = by_path(recorded, "/api/data_views/data_view").json()["data_view"]
    assert (view["id"], view["title"], view["timeFieldName"]) == ("svc-logs", "svc-logs*", "@timestamp")


def test_re_running_setup_replaces_the_data_view_instead_of_failing(recorded: list[HttpRequest]) -> None:
    assert by_path(recorded, "/api/data_views/data_view").json()["override"] is True


def test_trace_id_is_formatted_as_a_link_to_the_trace_in_jaeger(recorded: list[HttpRequest]) -> None:
    formats = by_path(recorded, "/api/data_views/data_view").json()["data_view"]["fieldFormats"]
    assert formats["trace.id"]["id"] == "url"
    assert formats["trace.id"]["params"]["urlTemplate"] == f"{JAEGER_UI}/trace/{{{{value}}}}"


def test_a_runtime_field_links_each_line_to_its_sentry_events(recorded: list[HttpRequest]) -> None:
    view = by_path(recorded, "/api/data_views/data_view").json()["data_view"]
    assert "doc['trace.id']" in view["runtimeFieldMap"]["trace.sentry"]["script"]["source"]
    assert (
        view["fieldFormats"]["trace.sentry"]["params"]["urlTemplate"]
        == f"{SPOTLIGHT_UI}/telemetry/traces/{{{{value}}}}"
    )


def test_field_formats_name_fields_the_index_template_or_the_view_defines(recorded: list[HttpRequest]) -> None:
    view = by_path(recorded, "/api/data_views/data_view").json()["data_view"]
    known = set(flat_properties(load_json(INDEX_TEMPLATE)["template"]["mappings"])) | set(view["runtimeFieldMap"])
    assert set(view["fieldFormats"]) - known == set()


def test_sets_the_svc_logs_view_as_default(recorded: list[HttpRequest]) -> None:
    body = by_path(recorded, "/api/data_views/default").json()
    jsonschema.validate(body, SET_DEFAULT)
    assert body == {"data_view_id": "svc-logs", "force": True}


def _imported(recorded: list[HttpRequest]) -> list[dict[str, Any]]:
    request = by_path(recorded, "/api/saved_objects/_import")
    raw = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    (part,) = list(message.iter_parts())
    assert part.get_param("name", header="content-disposition") == "file"
    assert str(part.get_filename()).endswith(".ndjson")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return [json.loads(line) for line in payload.decode().splitlines() if line]


def test_imports_one_saved_search_for_errors_on_the_data_view(recorded: list[HttpRequest]) -> None:
    (search,) = _imported(recorded)
    assert search["type"] == "search"
    source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert "error" in source["query"]["query"]
    assert source["query"]["language"] == "kuery"
    ref = next(r for r in search["references"] if r["name"] == source["indexRefName"])
    assert (ref["type"], ref["id"]) == ("index-pattern", "svc-logs")


def test_saved_search_columns_exist(recorded: list[HttpRequest]) -> None:
    (search,) = _imported(recorded)
    view = by_path(recorded, "/api/data_views/data_view").json()["data_view"]
    known = set(flat_properties(load_json(INDEX_TEMPLATE)["template"]["mappings"])) | set(view["runtimeFieldMap"])
    assert set(search["attributes"]["columns"]) - known == set()


def test_waits_until_kibana_is_available_not_merely_answering(setup: ModuleType) -> None:
    levels = iter(["unavailable", "degraded", "available"])

    def respond(request: HttpRequest) -> Reply:
        return Reply(200, {"status": {"overall": {"level": next(levels)}}})

    with ScriptedServer(respond) as server:
        setup.wait_until_available(server.url, deadline_s=30, sleep=lambda _: None)
    assert len(server.requests()) == 3


def test_exits_non_zero_when_kibana_rejects_the_data_view(setup: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    def respond(request: HttpRequest) -> Reply:
        if request.path == "/api/data_views/data_view":
            return Reply(400, {"message": "[request body.data_view.title]: expected value of type [string]"})
        return kibana(request)

    server: ScriptedServer
    with ScriptedServer(respond) as server:
        monkeypatch.setenv("KIBANA_URL", server.url)
        assert setup.main() == 1
    assert [r.path for r in server.requests()][-1] == "/api/data_views/data_view"
