"""Rendering deploy/k8s with the real kustomize, and reading what it rendered."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.peers import cache_dir, read_env_file
from tests.peers.binaries import require_peer

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
LAB_FLUENT_BIT = REPO / "deploy" / "fluent-bit"

# What a cluster operator applies, each rendered on its own. The logging targets read the lab's
# deploy/fluent-bit/parsers.yaml, outside their directory, hence LoadRestrictionsNone everywhere.
TARGETS = ("base", "logging", "overlays/sidecar-logging", "monitoring", "postgres")

# The Kubernetes version the schemas are taken from (kubernetes-validate ships up to 1.37).
KUBERNETES_VERSION = "1.37"

# The collector validator's name in peers.env and its default place in the cache (see tests/k8s/otelcol).
OTELCOL_VALIDATE_VAR = "OTELCOL_VALIDATE_BIN"

Manifest = dict[str, Any]


def kustomize_build(kustomize: str, target: str) -> list[Manifest]:
    """`kustomize build` of deploy/k8s/<target>, as a list of objects."""
    result = subprocess.run(
        [kustomize, "build", "--load-restrictor", "LoadRestrictionsNone", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find_otelcol_validate() -> str:
    """The collector config validator built from tests/k8s/otelcol; skip on a laptop, fail under CI without it."""
    candidates = [
        os.environ.get(OTELCOL_VALIDATE_VAR),
        read_env_file(cache_dir() / "peers.env").get(OTELCOL_VALIDATE_VAR),
    ]
    found = next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)
    return require_peer("otelcol-validate", found)


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    """The single object of that kind and name."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def generated(manifests: list[Manifest], kind: str, prefix: str) -> Manifest:
    """The single object whose name is ``prefix`` plus kustomize's content hash."""
    found = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"].rsplit("-", 1)[0] == prefix]
    assert len(found) == 1, f"expected one generated {kind} {prefix}-<hash>, found {len(found)}"
    return found[0]


def pod_spec(workload: Manifest) -> dict[str, Any]:
    """The pod template's spec of a Deployment or DaemonSet."""
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Manifest) -> Iterator[dict[str, Any]]:
    """Every container that runs for the pod's whole life: regular ones and native sidecars."""
    spec = pod_spec(workload)
    yield from spec.get("containers", [])
    yield from (c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always")


def container(workload: Manifest, name: str) -> dict[str, Any]:
    """One container (regular or sidecar) by name."""
    found = [c for c in containers(workload) if c["name"] == name]
    assert len(found) == 1, f"expected one container {name}, found {len(found)}"
    return found[0]


def environment(manifests: list[Manifest], workload: Manifest, name: str) -> dict[str, str]:
    """The plain-value environment a container gets: its ConfigMaps (envFrom) overlaid by literal env values."""
    namespace = workload["metadata"].get("namespace")
    env: dict[str, str] = {}
    target = container(workload, name)
    for source in target.get("envFrom", []):
        ref = source["configMapRef"]["name"]
        config_map = [
            m
            for m in manifests
            if m["kind"] == "ConfigMap" and m["metadata"]["name"] == ref and m["metadata"].get("namespace") == namespace
        ]
        assert len(config_map) == 1, f"envFrom names ConfigMap {ref}, which is not in the rendered output"
        env.update(config_map[0].get("data", {}))
    env.update({e["name"]: e["value"] for e in target.get("env", []) if "value" in e})
    return env


def config_file(manifests: list[Manifest], workload: Manifest, volume: str, key: str) -> str:
    """The text a container reads from ``key`` of the ConfigMap mounted as ``volume``."""
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    ref = volumes[volume]["configMap"]["name"]
    config_map = one(manifests, "ConfigMap", ref)
    text: str = config_map["data"][key]
    return text
