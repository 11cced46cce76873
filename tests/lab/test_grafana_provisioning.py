"""deploy/grafana: the provisioned data sources and the RED dashboard fit together and fit svc's metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.service import base_env, service_thread

from .files import DEPLOY, load_json, load_yaml, services

GRAFANA = DEPLOY / "grafana"
# svc's metric families (contract, "Metrics"); histograms also expose _bucket/_sum/_count, counters _total.
METRICS = {
    "http_server_requests_total",
    "http_server_request_duration_seconds",
    "http_server_active_requests",
    "http_server_response_size_bytes",
    "svc_links_created_total",
    "svc_redirects_total",
    "svc_build_info",
    "svc_telemetry_dropped_total",
}
HISTOGRAM_SERIES = {f"{m}{suffix}" for m in METRICS for suffix in ("_bucket", "_sum", "_count")}
EXEMPLAR_LABEL = "trace_id"  # the label svc puts on its latency exemplars


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    data = load_yaml(GRAFANA / "provisioning" / "datasources" / "datasources.yaml")
    return {d["uid"]: d for d in data["datasources"]}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = load_json(GRAFANA / "dashboards" / "svc-red.json")
    return data


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_prometheus_jaeger_and_elasticsearch_are_provisioned(datasources: dict[str, dict[str, Any]]) -> None:
    assert {d["type"] for d in datasources.values()} == {"prometheus", "jaeger", "elasticsearch"}


def test_exemplars_link_to_jaeger_by_the_label_svc_writes(datasources: dict[str, dict[str, Any]]) -> None:
    destinations = datasources["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert {d["name"] for d in destinations} == {EXEMPLAR_LABEL}
    internal = [d["datasourceUid"] for d in destinations if "datasourceUid" in d]
    assert internal == ["jaeger"]
    assert datasources["jaeger"]["type"] == "jaeger"
    external = [d["url"] for d in destinations if "url" in d]
    assert external == ["http://localhost:16686/trace/${__value.raw}"]


def test_cross_links_name_provisioned_data_sources(datasources: dict[str, dict[str, Any]]) -> None:
    linked = {
        datasources["jaeger"]["jsonData"]["tracesToLogsV2"]["datasourceUid"],
        *(link["datasourceUid"] for link in datasources["elasticsearch"]["jsonData"]["dataLinks"]),
    }
    assert linked <= set(datasources)


def test_logs_data_source_reads_the_svc_log_stream_by_timestamp(datasources: dict[str, dict[str, Any]]) -> None:
    es = datasources["elasticsearch"]["jsonData"]
    assert (es["index"], es["timeField"], es["logLevelField"]) == ("svc-logs", "@timestamp", "log.level")


def test_dashboard_panels_use_provisioned_data_sources(
    dashboard: dict[str, Any], datasources: dict[str, dict[str, Any]]
) -> None:
    used = {p["datasource"]["uid"] for p in panels(dashboard)}
    used |= {t["datasource"]["uid"] for p in panels(dashboard) for t in p.get("targets", [])}
    assert used <= set(datasources)


def test_dashboard_queries_only_metrics_svc_exports(dashboard: dict[str, Any]) -> None:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    names = {n for e in exprs for n in re.findall(r"\b((?:http_server|svc)_[a-z_]+)\b", e)}
    assert names
    assert names <= METRICS | HISTOGRAM_SERIES


def test_dashboard_covers_rate_errors_and_duration(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(t.get("expr", "") for p in panels(dashboard) for t in p.get("targets", []))
    assert "rate(http_server_requests_total" in exprs
    assert 'status_code=~"5.."' in exprs
    assert "histogram_quantile(0.99" in exprs


def test_latency_panels_ask_for_exemplars(dashboard: dict[str, Any]) -> None:
    latency = [
        t for p in panels(dashboard) for t in p.get("targets", []) if "duration_seconds_bucket" in t.get("expr", "")
    ]
    assert latency
    assert all(t["exemplar"] is True for t in latency)


def test_dashboard_selects_the_scrape_job_prometheus_defines(dashboard: dict[str, Any]) -> None:
    jobs = {j["job_name"] for j in load_yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]}
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", []) if "expr" in t]
    assert {m for e in exprs for m in re.findall(r'job="([^"]+)"', e)} <= jobs


def test_dashboard_has_a_stable_uid_and_unique_panel_ids(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert dashboard["uid"] == "svc-red"
    assert len(ids) == len(set(ids))


def test_dashboard_provider_reads_the_directory_compose_mounts() -> None:
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yaml")["providers"][0]
    mounts = [str(v) for v in services()["grafana"]["volumes"]]
    assert f"./deploy/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    home = {**services()["grafana"]["environment"]}["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/svc-red.json"


def test_svc_really_labels_its_latency_exemplars_trace_id(tmp_path: Path) -> None:
    # Grafana's destinations and lab-check both key on this label name: read it from the running service.
    with service_thread(base_env(tmp_path)) as svc:
        httpx.get(f"{svc.url}/links", timeout=5)
        text = httpx.get(f"{svc.admin_url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=5).text
    labels = set(re.findall(r'^http_server_request_duration_seconds_bucket\{.*\} \S+ # \{(\w+)="', text, re.MULTILINE))
    assert labels == {EXEMPLAR_LABEL}
