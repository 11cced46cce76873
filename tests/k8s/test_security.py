"""Every container is locked down; svc's pods fit the "restricted" Pod Security level; config references resolve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.k8s.manifests import TARGETS, Manifest, containers, one, pod_spec

WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")


def workloads(manifests: list[Manifest]) -> Iterator[Manifest]:
    return (m for m in manifests if m["kind"] in WORKLOAD_KINDS)


def effective(workload: Manifest, container: dict[str, object], key: str) -> object:
    """A securityContext setting as the kubelet applies it: the container's, else the pod's."""
    own = container.get("securityContext") or {}
    assert isinstance(own, dict)
    return own.get(key, pod_spec(workload).get("securityContext", {}).get(key))


@pytest.mark.parametrize("target", ["base", "logging", "overlays/sidecar-logging", "postgres"])
def test_every_container_drops_all_capabilities_and_writes_nothing_outside_volumes(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    for workload in workloads(rendered[target]):
        for container in containers(workload):
            where = f"{target}: {workload['metadata']['name']}/{container['name']}"
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            assert effective(workload, container, "seccompProfile") == {"type": "RuntimeDefault"}, where


@pytest.mark.parametrize("target", ["base", "logging", "overlays/sidecar-logging", "postgres"])
def test_every_container_has_requests_and_limits(rendered: dict[str, list[Manifest]], target: str) -> None:
    for workload in workloads(rendered[target]):
        for container in containers(workload):
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), container["name"]
            assert {"cpu", "memory"} <= resources["limits"].keys(), container["name"]


def test_svc_pods_run_as_non_root_without_host_access(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "svc")
    for container in containers(deployment):
        assert effective(deployment, container, "runAsNonRoot") is True, container["name"]
        assert effective(deployment, container, "runAsUser") != 0, container["name"]
    assert not [v for v in pod_spec(deployment)["volumes"] if "hostPath" in v]
    assert pod_spec(deployment)["automountServiceAccountToken"] is False


def test_svc_namespace_enforces_the_restricted_pod_security_level(base: list[Manifest]) -> None:
    labels = one(base, "Namespace", "svc")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_host_log_readers_live_only_where_privileged_pods_are_allowed(rendered: dict[str, list[Manifest]]) -> None:
    # hostPath is refused by the baseline and restricted levels: the namespace must say privileged, or
    # the API server rejects the pods at apply time.
    for target in ("logging", "overlays/sidecar-logging"):
        manifests = rendered[target]
        namespaces = {m["metadata"]["name"]: m for m in manifests if m["kind"] == "Namespace"}
        for workload in workloads(manifests):
            if any("hostPath" in v for v in pod_spec(workload)["volumes"]):
                namespace = namespaces[workload["metadata"]["namespace"]]
                assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


@pytest.mark.parametrize("target", TARGETS)
def test_every_config_map_a_pod_uses_is_in_the_same_render(rendered: dict[str, list[Manifest]], target: str) -> None:
    # Catches a generated ConfigMap whose hashed name did not reach the pod (say, a namespace mismatch
    # between an overlay and its base): the pod would wait forever for a ConfigMap that does not exist.
    manifests = rendered[target]
    present = {(m["metadata"].get("namespace"), m["metadata"]["name"]) for m in manifests if m["kind"] == "ConfigMap"}
    for workload in workloads(manifests):
        namespace = workload["metadata"].get("namespace")
        spec = pod_spec(workload)
        wanted = {v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        for container in [*spec.get("containers", []), *spec.get("initContainers", [])]:
            wanted |= {s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s}
        assert {(namespace, name) for name in wanted} <= present


def test_postgres_runs_as_non_root_under_the_restricted_level(rendered: dict[str, list[Manifest]]) -> None:
    statefulset = one(rendered["postgres"], "StatefulSet", "postgres")
    for container in containers(statefulset):
        assert effective(statefulset, container, "runAsNonRoot") is True
        assert effective(statefulset, container, "runAsUser") != 0
    assert not [v for v in pod_spec(statefulset)["volumes"] if "hostPath" in v]
    assert pod_spec(statefulset)["automountServiceAccountToken"] is False
