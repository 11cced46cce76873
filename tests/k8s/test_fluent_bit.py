"""Fluent Bit on Kubernetes (DaemonSet and sidecar) ships svc's stdout exactly as the lab does."""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from tests.k8s.manifests import LAB_FLUENT_BIT, REPO, Manifest, container, one, pod_spec

LAB_CONFIG = LAB_FLUENT_BIT / "fluent-bit.yaml"
LAB_PARSERS = LAB_FLUENT_BIT / "parsers.yaml"
COMPOSE = REPO / "docker-compose.yml"
INDEX_TEMPLATE = REPO / "deploy" / "elasticsearch" / "index-template.json"

# Where the output may differ from the lab's: the lab reaches Elasticsearch by its compose service name.
ADDRESS_KEYS = {"host", "port"}
# Pod identity fields the Kubernetes pipelines add; the lab's index template does not map them yet
# (dynamic: false keeps them in _source, unsearchable). Remove a name here once the template maps it.
PENDING_MAPPING: set[str] = set()
# A kubelet log file name for svc's own container, and for its collector sidecar (which must not be read).
SVC_LOG = "/var/log/containers/svc-7d4b9c6f5-x2x9k_svc_svc-" + "a" * 64 + ".log"
SIDECAR_LOG = "/var/log/containers/svc-7d4b9c6f5-x2x9k_svc_otel-collector-" + "b" * 64 + ".log"


@dataclass(frozen=True)
class Variant:
    target: str
    kind: str
    name: str
    container: str
    volume: str


VARIANTS = {
    "daemonset": Variant("logging", "DaemonSet", "fluent-bit", "fluent-bit", "config"),
    "sidecar": Variant("overlays/sidecar-logging", "Deployment", "svc", "fluent-bit", "fluent-bit-sidecar-config"),
}


def files(rendered: dict[str, list[Manifest]], variant: Variant) -> dict[str, str]:
    """The files in Fluent Bit's config directory: the mounted ConfigMap's keys."""
    manifests = rendered[variant.target]
    workload = one(manifests, variant.kind, variant.name)
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    data: dict[str, str] = one(manifests, "ConfigMap", volumes[variant.volume]["configMap"]["name"])["data"]
    return data


def pipeline(config_files: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The main file with its includes merged, as Fluent Bit merges them: inputs, filters, outputs, parsers."""
    merged: dict[str, list[dict[str, Any]]] = {"inputs": [], "filters": [], "outputs": [], "parsers": []}
    main = yaml.safe_load(config_files["fluent-bit.yaml"])
    for document in [main, *(yaml.safe_load(config_files[name]) for name in main.get("includes", []))]:
        for section in ("inputs", "filters", "outputs"):
            merged[section] += document.get("pipeline", {}).get(section, [])
        merged["parsers"] += document.get("parsers", [])
    return merged


def lab() -> dict[str, list[dict[str, Any]]]:
    return pipeline({"fluent-bit.yaml": LAB_CONFIG.read_text(), "parsers.yaml": LAB_PARSERS.read_text()})


def plugin(plugins: list[dict[str, Any]], name: str, **match: str) -> dict[str, Any]:
    found = [p for p in plugins if p["name"] == name and all(p.get(k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one {name} {match}, found {len(found)}"
    return found[0]


def as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else value


@pytest.mark.parametrize("variant", VARIANTS)
def test_parsers_are_the_labs_file_unchanged(rendered: dict[str, list[Manifest]], variant: str) -> None:
    assert files(rendered, VARIANTS[variant])["parsers.yaml"] == LAB_PARSERS.read_text()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_include_is_mounted_next_to_the_main_file(rendered: dict[str, list[Manifest]], variant: str) -> None:
    config_files = files(rendered, VARIANTS[variant])
    assert set(yaml.safe_load(config_files["fluent-bit.yaml"])["includes"]) <= config_files.keys()


@pytest.mark.parametrize("variant", VARIANTS)
def test_json_lift_is_the_labs(rendered: dict[str, list[Manifest]], variant: str) -> None:
    ours = plugin(pipeline(files(rendered, VARIANTS[variant]))["filters"], "parser", key_name="log")
    assert ours == plugin(lab()["filters"], "parser", key_name="log")


@pytest.mark.parametrize("variant", VARIANTS)
def test_unparsed_lines_are_kept_and_tagged_like_the_labs(rendered: dict[str, list[Manifest]], variant: str) -> None:
    ours = [
        f for f in pipeline(files(rendered, VARIANTS[variant]))["filters"] if "log message" in as_list(f.get("rename"))
    ]
    theirs = plugin(lab()["filters"], "modify")
    assert len(ours) == 1
    assert "log message" in as_list(theirs["rename"])
    assert as_list(ours[0]["add"]) == as_list(theirs["add"]) == ["event.dataset svc.unparsed"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_elasticsearch_output_is_the_labs_but_for_the_address(
    rendered: dict[str, list[Manifest]], variant: str
) -> None:
    ours = plugin(pipeline(files(rendered, VARIANTS[variant]))["outputs"], "es")
    theirs = plugin(lab()["outputs"], "es")
    assert {k: v for k, v in ours.items() if k not in ADDRESS_KEYS} == {
        k: v for k, v in theirs.items() if k not in ADDRESS_KEYS
    }
    assert ours["host"].split(".")[0] == "elasticsearch"
    assert ours["port"] == theirs["port"] == 9200


def test_output_writes_a_data_stream_the_index_template_covers(rendered: dict[str, list[Manifest]]) -> None:
    template = json.loads(INDEX_TEMPLATE.read_text())
    output = plugin(pipeline(files(rendered, VARIANTS["daemonset"]))["outputs"], "es")
    assert any(fnmatch.fnmatchcase(output["index"], pattern) for pattern in template["index_patterns"])
    assert "data_stream" in template
    # Data streams accept only op_type create; Elasticsearch 8+ rejects the _type field.
    assert output["write_operation"] == "create"
    assert output["suppress_type_name"] is True


@pytest.mark.parametrize("variant", VARIANTS)
def test_image_is_the_labs_fluent_bit(rendered: dict[str, list[Manifest]], variant: str) -> None:
    spec = VARIANTS[variant]
    compose = yaml.safe_load(COMPOSE.read_text())
    image = container(one(rendered[spec.target], spec.kind, spec.name), spec.container)["image"]
    assert image == compose["services"]["fluent-bit"]["image"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_filter_and_output_sees_the_tailed_lines(rendered: dict[str, list[Manifest]], variant: str) -> None:
    merged = pipeline(files(rendered, VARIANTS[variant]))
    tail = plugin(merged["inputs"], "tail")
    # Fluent Bit replaces the tag's "*" with the file path, dots for slashes.
    tag = tail["tag"].replace("*", tail["path"].replace("/", "."))
    assert tail["multiline.parser"] == "cri"
    for stage in [*merged["filters"], *merged["outputs"]]:
        assert fnmatch.fnmatchcase(tag, stage["match"]), stage


def test_daemonset_tails_svcs_own_container_only(rendered: dict[str, list[Manifest]]) -> None:
    tail = plugin(pipeline(files(rendered, VARIANTS["daemonset"]))["inputs"], "tail")
    namespace = one(rendered["base"], "Namespace", "svc")["metadata"]["name"]
    assert f"_{namespace}_svc-" in tail["path"]
    assert fnmatch.fnmatchcase(SVC_LOG, tail["path"])
    assert not fnmatch.fnmatchcase(SIDECAR_LOG, tail["path"])


def test_daemonset_reads_pod_namespace_and_container_from_the_file_name(rendered: dict[str, list[Manifest]]) -> None:
    merged = pipeline(files(rendered, VARIANTS["daemonset"]))
    tail = plugin(merged["inputs"], "tail")
    parser_name = plugin(merged["filters"], "parser", key_name=tail["path_key"])["parser"]
    onigmo = plugin(merged["parsers"], parser_name)["regex"]
    fields = re.fullmatch(onigmo.replace("(?<", "(?P<"), SVC_LOG)
    assert fields is not None
    assert fields.groupdict() == {"pod": "svc-7d4b9c6f5-x2x9k", "namespace": "svc", "container": "svc", "id": "a" * 64}


def test_sidecar_reads_only_its_own_pods_log_directory(rendered: dict[str, list[Manifest]]) -> None:
    deployment = one(rendered["overlays/sidecar-logging"], "Deployment", "svc")
    sidecar = container(deployment, "fluent-bit")
    downward = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in sidecar["env"] if "valueFrom" in e}
    mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "pod-logs")
    tail = plugin(pipeline(files(rendered, VARIANTS["sidecar"]))["inputs"], "tail")
    # The kubelet's layout: /var/log/pods/<namespace>_<pod name>_<pod uid>/<container>/<restart>.log
    assert mount["subPathExpr"] == "$(POD_NAMESPACE)_$(POD_NAME)_$(POD_UID)"
    assert mount["readOnly"] is True
    assert {k: downward[k] for k in ("POD_NAMESPACE", "POD_NAME", "POD_UID")} == {
        "POD_NAMESPACE": "metadata.namespace",
        "POD_NAME": "metadata.name",
        "POD_UID": "metadata.uid",
    }
    assert tail["path"] == f"{mount['mountPath']}/svc/*.log"


def test_sidecar_outlives_svc_to_ship_its_last_lines(rendered: dict[str, list[Manifest]]) -> None:
    deployment = one(rendered["overlays/sidecar-logging"], "Deployment", "svc")
    init = {c["name"]: c for c in pod_spec(deployment)["initContainers"]}
    assert init["fluent-bit"]["restartPolicy"] == "Always"


@pytest.mark.parametrize("variant", VARIANTS)
def test_fields_the_kubernetes_pipeline_adds_are_mapped_in_the_index_template(
    rendered: dict[str, list[Manifest]], variant: str
) -> None:
    mapped = set(json.loads(INDEX_TEMPLATE.read_text())["template"]["mappings"]["properties"])
    added: set[str] = set()
    for stage in pipeline(files(rendered, VARIANTS[variant]))["filters"]:
        if stage["name"] == "modify":
            added |= {entry.split()[1] for entry in as_list(stage.get("rename"))}  # "old new"
            added |= {entry.split()[0] for entry in as_list(stage.get("add"))}  # "key value"
    assert added - mapped <= PENDING_MAPPING


# The keys Fluent Bit's built-in `cri` multiline parser puts next to "log" (the real Fluent Bit kept all three).
CRI_BOOKKEEPING = {"time", "stream", "_p"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_cri_parsers_own_keys_never_reach_elasticsearch(rendered: dict[str, list[Manifest]], variant: str) -> None:
    removed: set[str] = set()
    for stage in pipeline(files(rendered, VARIANTS[variant]))["filters"]:
        if stage["name"] == "modify":
            removed |= set(as_list(stage.get("remove")))
    assert removed >= CRI_BOOKKEEPING
