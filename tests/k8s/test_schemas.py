"""Every rendered object is valid against the Kubernetes JSON schemas (kubernetes-validate, strict mode)."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from tests.k8s.manifests import KUBERNETES_VERSION, TARGETS, Manifest, one

# Custom resources have no schema in kubernetes-validate; each is checked against the small schema below instead.
CRD_GROUPS = ("monitoring.coreos.com/",)

# The part of the Prometheus Operator's PodMonitor CRD (monitoring.coreos.com/v1) that we use, closed to typos:
# a misspelt key would be silently ignored by the operator, so it fails here.
PODMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PodMonitor"},
        "spec": {
            "type": "object",
            "required": ["selector", "podMetricsEndpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
                },
                "podMetricsEndpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["port"],
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": "^(0|(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?)$"},
                        },
                    },
                },
            },
        },
    },
}


def is_custom_resource(manifest: Manifest) -> bool:
    return str(manifest["apiVersion"]).startswith(CRD_GROUPS)


@pytest.mark.parametrize("target", TARGETS)
def test_every_rendered_object_validates_against_the_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    errors: list[str] = []
    checked = 0
    for manifest in rendered[target]:
        if is_custom_resource(manifest):
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as err:
            errors.append(f"{name}: {'.'.join(str(p) for p in err.path)}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError as err:
            errors.append(f"{name}: {err.message}")
    assert not errors, "\n".join(errors)
    assert checked or target == "monitoring", f"{target} rendered no Kubernetes object to validate"


def test_strict_validation_rejects_a_misspelt_field(base: list[Manifest]) -> None:
    # The control for the test above: strict schemas refuse unknown keys, which Kubernetes would drop silently.
    deployment = copy.deepcopy(one(base, "Deployment", "svc"))
    svc = deployment["spec"]["template"]["spec"]["containers"][0]
    svc["livenesProbe"] = svc.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_schema_version_is_one_kubernetes_validate_ships() -> None:
    assert KUBERNETES_VERSION in {".".join(v.split(".")[:2]) for v in all_versions()}


def test_custom_resources_are_only_the_prometheus_operator_podmonitor(rendered: dict[str, list[Manifest]]) -> None:
    kinds = {m["kind"] for target in TARGETS for m in rendered[target] if is_custom_resource(m)}
    assert kinds == {"PodMonitor"}


def test_podmonitor_validates_against_its_crd_schema_subset(rendered: dict[str, list[Manifest]]) -> None:
    podmonitor = one(rendered["monitoring"], "PodMonitor", "svc")
    jsonschema.validate(podmonitor, PODMONITOR_SCHEMA)


def test_podmonitor_schema_subset_rejects_a_misspelt_key(rendered: dict[str, list[Manifest]]) -> None:
    podmonitor = copy.deepcopy(one(rendered["monitoring"], "PodMonitor", "svc"))
    podmonitor["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(podmonitor, PODMONITOR_SCHEMA)
