"""deploy/elasticsearch/setup.py, run for real against a recording stand-in for Elasticsearch."""

from __future__ import annotations

from types import ModuleType

import pytest

from harness.http_backend import HttpRequest, Reply, ScriptedServer

from .files import DEPLOY, ILM_POLICY, INDEX_TEMPLATE, load_json, load_script


@pytest.fixture(scope="module")
def setup() -> ModuleType:
    return load_script(DEPLOY / "elasticsearch" / "setup.py", "es_setup")


def healthy(request: HttpRequest) -> Reply:
    return Reply(200, {"acknowledged": True, "status": "yellow", "timed_out": False})


def test_installs_the_ilm_policy_then_the_template_that_names_it(setup: ModuleType) -> None:
    with ScriptedServer(healthy) as es:
        setup.install(es.url)
    puts = [(r.method, r.path) for r in es.requests()]
    assert puts == [("PUT", "/_ilm/policy/svc-logs"), ("PUT", "/_index_template/svc-logs")]


def test_sends_the_policy_and_template_files_unchanged(setup: ModuleType) -> None:
    with ScriptedServer(healthy) as es:
        setup.install(es.url)
    assert es.requests()[0].json() == load_json(ILM_POLICY)
    assert es.requests()[1].json() == load_json(INDEX_TEMPLATE)
    assert all(r.headers["content-type"] == "application/json" for r in es.requests())


def test_waits_until_the_cluster_reports_healthy(setup: ModuleType) -> None:
    answers = iter([503, 503, 200])
    with ScriptedServer(lambda r: Reply(next(answers), {})) as es:
        setup.wait_for_cluster(es.url, deadline_s=30, sleep=lambda _: None)
    assert [r.path for r in es.requests()] == ["/_cluster/health?wait_for_status=yellow&timeout=5s"] * 3


def test_gives_up_after_the_deadline(setup: ModuleType) -> None:
    with ScriptedServer(lambda r: Reply(503, {})) as es, pytest.raises(TimeoutError):
        setup.wait_for_cluster(es.url, deadline_s=0, sleep=lambda _: None)


def test_exits_non_zero_when_elasticsearch_rejects_the_template(
    setup: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def respond(request: HttpRequest) -> Reply:
        if request.path.startswith("/_index_template"):
            return Reply(400, {"error": "mapper_parsing_exception"})
        return healthy(request)

    with ScriptedServer(respond) as es:
        monkeypatch.setenv("ELASTICSEARCH_URL", es.url)
        assert setup.main() == 1
