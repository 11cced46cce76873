"""The svc Deployment agrees with svc's own configuration, the contract's routes, and its shutdown sequence."""

from __future__ import annotations

import copy

import pytest
import yaml

from svc.config import SETTINGS, Config
from svc.main import FLUSH_TIMEOUT
from svc.server import QUIET_CLOSE_TIMEOUT
from tests.k8s.manifests import K8S, REPO, Manifest, config_file, container, environment, one, pod_spec

# Seconds left for whatever else must flush after svc and its collector are done (the Fluent Bit sidecar
# variant, a slow node); deployment.yaml's comment spells out the same budget.
GRACE_MARGIN_S = 5.0


def svc_config(base: list[Manifest]) -> Config:
    return Config.from_env(environment(base, one(base, "Deployment", "svc"), "svc").get)


def named_ports(workload: Manifest, name: str) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container(workload, name)["ports"]}


def test_every_variable_set_for_svc_is_one_svc_declares(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "svc")
    declared = {s.env for s in SETTINGS}
    given = set(environment(base, deployment, "svc")) | {e["name"] for e in container(deployment, "svc")["env"]}
    assert given - declared == set()


def test_svc_accepts_its_kubernetes_settings(base: list[Manifest]) -> None:
    # Raises ConfigError (what makes svc exit 2 at start) for any value svc would refuse.
    svc_config(base)


def test_listeners_bind_the_pod_ip_not_loopback(base: list[Manifest]) -> None:
    config = svc_config(base)
    assert (config.host, config.admin_host) == ("0.0.0.0", "0.0.0.0")


def test_container_ports_are_the_ports_svc_listens_on(base: list[Manifest]) -> None:
    config = svc_config(base)
    assert named_ports(one(base, "Deployment", "svc"), "svc") == {"http": config.port, "admin": config.admin_port}


def test_probes_ask_healthz_and_readyz_on_the_public_port(base: list[Manifest]) -> None:
    svc = container(one(base, "Deployment", "svc"), "svc")
    probes = {
        kind: (svc[kind]["httpGet"]["path"], svc[kind]["httpGet"]["port"])
        for kind in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert probes == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }


def test_grace_period_covers_prestop_drain_timeout_and_both_flushes(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "svc")
    config = svc_config(base)
    pre_stop = container(deployment, "svc")["lifecycle"]["preStop"]["sleep"]["seconds"]
    collector = yaml.safe_load(config_file(base, deployment, "otel-collector-config", "config.yaml"))
    collector_export_s = float(collector["exporters"]["otlp_grpc/jaeger"]["timeout"].removesuffix("s"))
    needed = (
        pre_stop
        + config.shutdown_drain
        + 2 * QUIET_CLOSE_TIMEOUT  # each listener: queued connections accepted and read before it closes
        + config.shutdown_timeout
        + 2 * FLUSH_TIMEOUT  # spans, then Sentry events, each bounded by FLUSH_TIMEOUT
        + collector_export_s
        + GRACE_MARGIN_S
    )
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= needed


def test_prestop_keeps_serving_while_endpoints_update(base: list[Manifest]) -> None:
    # Kubernetes removes a terminating pod from the endpoints concurrently with preStop: a few seconds of
    # sleep let every node's proxy catch up before svc stops accepting connections.
    pre_stop = container(one(base, "Deployment", "svc"), "svc")["lifecycle"]["preStop"]
    assert pre_stop["sleep"]["seconds"] >= 3


def test_at_least_two_replicas_and_a_disruption_budget_that_keeps_one(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "svc")
    pdb = one(base, "PodDisruptionBudget", "svc")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] < deployment["spec"]["replicas"]


def test_rollouts_never_drop_below_full_capacity(base: list[Manifest]) -> None:
    strategy = one(base, "Deployment", "svc")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def pod_local_database(manifests: list[Manifest], workload: Manifest) -> list[str]:
    """Why replicas of this workload would each keep links of their own (empty when they share one database)."""
    replicas = workload["spec"].get("replicas", 1)
    if replicas <= 1:
        return []
    env = environment(manifests, workload, "svc")
    from_secret = {e["name"] for e in container(workload, "svc").get("env", []) if "valueFrom" in e}
    problems = []
    if "DATABASE_URL" not in env and "DATABASE_URL" not in from_secret:
        problems.append(f"{replicas} replicas without DATABASE_URL: each runs its own SQLite file")
    volumes = {v["name"]: v for v in pod_spec(workload).get("volumes", [])}
    data_dir = Config.from_env(env.get).database_path.rpartition("/")[0] or "/"
    for mount in container(workload, "svc").get("volumeMounts", []):
        if mount["mountPath"] == data_dir and "emptyDir" in volumes[mount["name"]]:
            problems.append(f"{replicas} replicas with an emptyDir at {data_dir}: data that dies with each pod")
    return problems


@pytest.mark.parametrize("target", ["base", "overlays/sidecar-logging"])
def test_replicas_share_one_database_and_keep_no_pod_local_data(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    assert pod_local_database(rendered[target], one(rendered[target], "Deployment", "svc")) == []


def test_the_check_refuses_replicas_on_a_pod_local_sqlite_file(base: list[Manifest]) -> None:
    # The shape these manifests had before PostgreSQL: 2 replicas, each with SQLite on an emptyDir.
    deployment = copy.deepcopy(one(base, "Deployment", "svc"))
    svc = container(deployment, "svc")
    svc["env"] = [e for e in svc["env"] if e["name"] != "DATABASE_URL"]
    svc["env"].append({"name": "DATABASE_PATH", "value": "/data/svc.db"})
    svc["volumeMounts"].append({"name": "data", "mountPath": "/data"})
    pod_spec(deployment)["volumes"].append({"name": "data", "emptyDir": {}})
    assert deployment["spec"]["replicas"] > 1
    assert len(pod_local_database(base, deployment)) == 2


def test_database_url_is_a_required_secret_reference(base: list[Manifest]) -> None:
    env = {e["name"]: e for e in container(one(base, "Deployment", "svc"), "svc")["env"]}
    ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "svc-database"
    assert ref.get("optional", False) is False, "replicas must not start on SQLite when the Secret is missing"


def test_only_tmp_is_an_emptydir(base: list[Manifest]) -> None:
    deployment = one(base, "Deployment", "svc")
    volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment, "svc")["volumeMounts"]}
    assert list(mounts) == ["/tmp"]
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_postgres_is_one_instance_on_a_claimed_volume(rendered: dict[str, list[Manifest]]) -> None:
    statefulset = one(rendered["postgres"], "StatefulSet", "postgres")
    assert statefulset["spec"]["replicas"] == 1
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    [postgres] = pod_spec(statefulset)["containers"]
    data = [m for m in postgres["volumeMounts"] if m["mountPath"] == "/var/lib/postgresql"]
    assert [m["name"] for m in data] == [claim["metadata"]["name"]], "data on the claim, not an emptyDir"
    password = {e["name"]: e for e in postgres["env"]}["POSTGRES_PASSWORD"]
    assert password["valueFrom"]["secretKeyRef"]["name"] == "svc-postgres"
    assert "single instance" in (K8S / "postgres" / "kustomization.yaml").read_text().replace("-", " ")


def test_postgres_image_is_the_labs(rendered: dict[str, list[Manifest]]) -> None:
    statefulset = one(rendered["postgres"], "StatefulSet", "postgres")
    lab = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["postgres"]["image"]
    assert pod_spec(statefulset)["containers"][0]["image"] == lab


def test_sentry_dsn_is_an_optional_secret_reference(base: list[Manifest]) -> None:
    env = {e["name"]: e for e in container(one(base, "Deployment", "svc"), "svc")["env"]}
    ref = env["SENTRY_DSN"]["valueFrom"]["secretKeyRef"]
    assert ref["optional"] is True
    assert "value" not in env["SENTRY_DSN"]


@pytest.mark.parametrize("target", ["base", "overlays/sidecar-logging", "logging", "monitoring", "postgres"])
def test_no_secret_values_are_committed(rendered: dict[str, list[Manifest]], target: str) -> None:
    secret_names = {s.env for s in SETTINGS if s.secret}
    assert not [m for m in rendered[target] if m["kind"] == "Secret"]
    for config_map in (m for m in rendered[target] if m["kind"] == "ConfigMap"):
        assert secret_names.isdisjoint(config_map.get("data", {}))


def test_service_routes_only_the_public_port(base: list[Manifest]) -> None:
    service = one(base, "Service", "svc")
    deployment = one(base, "Deployment", "svc")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_admin_port_is_announced_for_scraping(rendered: dict[str, list[Manifest]]) -> None:
    deployment = one(rendered["base"], "Deployment", "svc")
    template = deployment["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    podmonitor = one(rendered["monitoring"], "PodMonitor", "svc")
    endpoint = podmonitor["spec"]["podMetricsEndpoints"][0]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == named_ports(deployment, "svc")["admin"]
    assert annotations["prometheus.io/path"] == endpoint["path"] == "/metrics"
    assert endpoint["port"] == "admin"
    assert podmonitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    assert podmonitor["metadata"]["namespace"] == deployment["metadata"]["namespace"]
