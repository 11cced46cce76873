"""The OpenTelemetry Collector sidecar: svc reaches it, it reaches Jaeger, and the collector accepts its config."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from svc.config import Config
from tests.k8s.manifests import (
    REPO,
    Manifest,
    config_file,
    container,
    environment,
    find_otelcol_validate,
    one,
    pod_spec,
)

EXPORTER = "otlp_grpc/jaeger"
JAEGER_CONFIG = REPO / "deploy" / "jaeger" / "config.yaml"
VALIDATOR_GO_MOD = REPO / "tests" / "k8s" / "otelcol" / "go.mod"
# The environment the downward API gives the sidecar; values only need to look real for validation.
POD_ENV = {"POD_IP": "10.0.0.7", "POD_NAME": "svc-0", "POD_NAMESPACE": "svc", "NODE_NAME": "node-1"}


def collector_config(base: list[Manifest]) -> dict[str, Any]:
    deployment = one(base, "Deployment", "svc")
    config: dict[str, Any] = yaml.safe_load(config_file(base, deployment, "otel-collector-config", "config.yaml"))
    return config


def host_port(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


def run_validator(config: Path) -> subprocess.CompletedProcess[str]:
    """`otelcol-validate validate` on a config file, with the environment the sidecar gets in the pod."""
    return subprocess.run(
        [find_otelcol_validate(), "validate", f"--config={config}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=POD_ENV,
    )


def test_svc_exports_otlp_grpc_to_the_sidecars_receiver(base: list[Manifest]) -> None:
    config = Config.from_env(environment(base, one(base, "Deployment", "svc"), "svc").get)
    assert config.otlp_endpoint is not None
    target = urlsplit(config.otlp_endpoint)
    receiver = collector_config(base)["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert config.otlp_protocol == "grpc"
    assert (target.hostname, target.port) == host_port(receiver) == ("localhost", 4317)


def test_collector_forwards_to_jaegers_otlp_grpc_port(base: list[Manifest]) -> None:
    # deploy/jaeger/config.yaml is the lab's Jaeger: its OTLP gRPC listener is "${env:...:-<port>}".
    jaeger = yaml.safe_load(JAEGER_CONFIG.read_text())
    listener = jaeger["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    default_port = re.search(r":-(\d+)\}\s*$", listener)
    assert default_port is not None, listener
    host, port = host_port(collector_config(base)["exporters"][EXPORTER]["endpoint"])
    assert host.split(".")[0] == "jaeger-collector"
    assert port == int(default_port.group(1)) == 4317


def test_traces_pipeline_limits_memory_first_and_exports_to_jaeger(base: list[Manifest]) -> None:
    pipeline = collector_config(base)["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["otlp"]
    assert pipeline["processors"][0] == "memory_limiter"
    assert pipeline["exporters"] == [EXPORTER]


def test_exporter_batches_queues_and_retries(base: list[Manifest]) -> None:
    exporter = collector_config(base)["exporters"][EXPORTER]
    queue = exporter["sending_queue"]
    assert queue["enabled"] is True
    assert queue["batch"]["min_size"] <= queue["batch"]["max_size"] <= queue["queue_size"]
    assert exporter["retry_on_failure"]["enabled"] is True


def test_collector_health_endpoint_is_the_probed_port(base: list[Manifest]) -> None:
    sidecar = container(one(base, "Deployment", "svc"), "otel-collector")
    _, port = host_port(collector_config(base)["extensions"]["health_check"]["endpoint"])
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert sidecar["startupProbe"]["httpGet"]["port"] == "otel-health"
    assert ports["otel-health"] == port


def test_collector_is_a_native_sidecar_so_it_outlives_svc(base: list[Manifest]) -> None:
    # An init container with restartPolicy Always starts before svc and is stopped only after svc exits,
    # so svc's final span flush on SIGTERM still finds a listener.
    init = {c["name"]: c for c in pod_spec(one(base, "Deployment", "svc"))["initContainers"]}
    assert init["otel-collector"]["restartPolicy"] == "Always"


def test_collector_image_is_the_version_the_validator_is_built_from(base: list[Manifest]) -> None:
    image = container(one(base, "Deployment", "svc"), "otel-collector")["image"]
    name, _, tag = image.rpartition(":")
    pinned = re.search(r"go\.opentelemetry\.io/collector/otelcol v(\S+)", VALIDATOR_GO_MOD.read_text())
    assert name == "otel/opentelemetry-collector-contrib"
    assert pinned is not None
    assert tag == pinned.group(1)


def test_collector_accepts_its_config(base: list[Manifest], tmp_path: Path) -> None:
    # The collector's own unmarshalling at the image's version: unknown or misspelt keys, removed
    # components and bad durations all fail here, without Docker.
    deployment = one(base, "Deployment", "svc")
    config = tmp_path / "config.yaml"
    config.write_text(config_file(base, deployment, "otel-collector-config", "config.yaml"))
    result = run_validator(config)
    assert result.returncode == 0, result.stderr


def test_collector_validator_rejects_a_misspelt_key(base: list[Manifest], tmp_path: Path) -> None:
    broken = collector_config(base)
    broken["exporters"][EXPORTER]["sending_queue"]["batch"]["flush_timout"] = "1s"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(broken))
    result = run_validator(config)
    assert result.returncode != 0
    assert "flush_timout" in result.stderr
