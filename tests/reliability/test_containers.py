"""Containers and lab: the Dockerfile, docker-compose.yml and Kubernetes manifests, read as files.

Each check states the rule and the documented exceptions (with the reason the file itself gives). A file not
written yet skips its checks with that reason; a file that exists is always checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.checkout import REPO

DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
K8S = REPO / "deploy" / "k8s"

SECRET_NAME = re.compile(r"KEY|TOKEN|PASSWORD|PASSWD|SECRET|DSN|CREDENTIAL|PRIVATE", re.IGNORECASE)
# ${VAR}, ${VAR:-default}, ${VAR?error}: supplied by whoever runs compose, not written in the file.
INTERPOLATION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?+]).*)?\}$")
ROOT = {"root", "0"}


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} not written yet")


# --- Dockerfile -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def dockerfile_instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, each tagged with its build stage."""
    joined: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    stage = -1
    instructions = []
    for line in joined:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    return instructions


def _final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def _assignments(args: str) -> list[tuple[str, str]]:
    # ENV/ARG forms: `NAME=value NAME2="v 2"`, `NAME value` (legacy ENV), `NAME` (ARG without default).
    if "=" not in args.split(" ", 1)[0]:
        name, _, value = args.partition(" ")
        return [(name, value.strip())]
    return [(m[1], m[2] or m[3] or m[4] or "") for m in re.finditer(r'(\w+)=(?:"([^"]*)"|\'([^\']*)\'|(\S*))', args)]


def test_the_image_runs_as_a_non_root_user() -> None:
    _need(DOCKERFILE)
    final = _final_stage(dockerfile_instructions(DOCKERFILE.read_text()))
    users = [i.args for i in final if i.keyword == "USER"]
    assert users, "the runtime stage never sets USER: the container would run as root"
    user, _, group = users[-1].partition(":")
    assert user not in ROOT, users[-1]
    assert group not in ROOT, users[-1]
    # Nothing after USER switches back to root.
    after = final[[i.keyword for i in final].index("USER") :]
    assert not [i for i in after if i.keyword == "USER" and i.args.partition(":")[0] in ROOT]


def test_no_secret_is_baked_into_the_image() -> None:
    _need(DOCKERFILE)
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    baked = [
        f"{i.keyword} {name}={value}"
        for i in instructions
        if i.keyword in ("ENV", "ARG")
        for name, value in _assignments(i.args)
        if SECRET_NAME.search(name) and value
    ]
    assert not baked, f"secret-looking build args/env with values (they stay in the image history): {baked}"
    # The runtime stage takes built artefacts only, never the whole build context (.env files, .git...).
    final = _final_stage(instructions)
    context_copies = [i.args for i in final if i.keyword in ("COPY", "ADD") and "--from=" not in i.args]
    assert not [a for a in context_copies if re.search(r"(^|\s)\.{1,2}/?(\s|$)", a)], context_copies


def test_the_image_has_no_setuid_shortcuts_or_remote_adds() -> None:
    _need(DOCKERFILE)
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    assert not [i.args for i in instructions if i.keyword == "ADD" and re.search(r"https?://", i.args)]
    assert not [
        i.args for i in instructions if i.keyword == "RUN" and re.search(r"chmod\s+[ug]?\+?[0-7]*s|\+s\b", i.args)
    ]


# --- docker-compose.yml ---------------------------------------------------------------------------------------
# Exceptions the compose file documents in its own header, and why.
WRITABLE_ROOT_FS = {"elasticsearch", "kibana"}  # "not elasticsearch/kibana, which write under their home"
RUNS_AS_ROOT = {"fluent-bit-init": {"CHOWN"}}  # one-shot chown of a fresh volume, CHOWN its only capability


def compose_services() -> dict[str, dict[str, Any]]:
    _need(COMPOSE)
    document = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, dict[str, Any]] = document["services"]
    return services


def _service_ids() -> list[str]:
    return sorted(compose_services()) if COMPOSE.exists() else ["(none)"]


@pytest.fixture(params=_service_ids())
def service(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    services = compose_services()
    return request.param, services[request.param]


def test_every_service_has_no_new_privileges(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    options = [str(o).replace(" ", "") for o in spec.get("security_opt", [])]
    assert {"no-new-privileges:true", "no-new-privileges"} & set(options), f"{name}: {options}"


def test_every_service_drops_all_capabilities(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    assert "ALL" in [str(c).upper() for c in spec.get("cap_drop", [])], name
    added = {str(c).upper() for c in spec.get("cap_add", [])}
    assert added <= RUNS_AS_ROOT.get(name, set()), f"{name} adds {added}"
    assert not spec.get("privileged"), name


def test_every_service_runs_as_a_non_root_user(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    if name in RUNS_AS_ROOT:
        return
    user = str(spec.get("user", ""))
    assert user, f"{name} sets no user: it runs as whatever the image says, often root"
    assert user.partition(":")[0] not in ROOT, f"{name} runs as {user}"


def test_root_filesystems_are_read_only_where_the_image_allows(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    if name in WRITABLE_ROOT_FS:
        return
    assert spec.get("read_only") is True, f"{name} has a writable root filesystem"


def _published(port: Any) -> tuple[str | None, str]:
    if isinstance(port, dict):
        return (str(port["host_ip"]) if "host_ip" in port else None), str(port.get("published", ""))
    parts = str(port).rsplit(":", 2)
    if len(parts) == 3:
        return parts[0].strip("[]"), parts[1]
    return None, parts[0]  # "8000" or "8000:8000": every interface


def test_every_published_port_is_bound_to_127_0_0_1(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    for port in spec.get("ports", []):
        host_ip, published = _published(port)
        assert host_ip == "127.0.0.1", f"{name} publishes {port!r} on {host_ip or 'every interface'}"
        assert published, f"{name}: {port!r}"


def test_no_service_reaches_the_host(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    assert spec.get("network_mode") != "host", name
    assert spec.get("pid") != "host", name
    volumes = [str(v if not isinstance(v, dict) else v.get("source", "")) for v in spec.get("volumes", [])]
    assert not [v for v in volumes if "docker.sock" in v], f"{name} mounts the Docker socket: {volumes}"


def test_no_secret_is_written_into_the_compose_file(service: tuple[str, dict[str, Any]]) -> None:
    name, spec = service
    environment = spec.get("environment", {})
    if isinstance(environment, list):
        environment = dict(str(item).partition("=")[::2] for item in environment)
    literal = {
        key: value
        for key, value in environment.items()
        if SECRET_NAME.search(key) and value not in (None, "") and not INTERPOLATION.match(str(value))
    }
    assert not literal, f"{name}: secrets written as literals (use ${{VAR}} from the environment): {literal}"


def test_the_elasticsearch_and_kibana_security_trade_off_is_stated() -> None:
    _need(COMPOSE)
    text = COMPOSE.read_text()
    header = "\n".join(line for line in text.splitlines()[:40] if line.startswith("#"))
    services = compose_services()
    if "elasticsearch" not in services:
        pytest.skip("no Elasticsearch in the lab")
    env = services["elasticsearch"].get("environment", {})
    if str(env.get("xpack.security.enabled", "true")).lower() == "false":
        assert re.search(r"security", header, re.IGNORECASE), "security is off but the header does not say so"
        assert "127.0.0.1" in header, "the header must say why security off is acceptable (loopback only)"


# --- Kubernetes -----------------------------------------------------------------------------------------------
# Log shippers read the kubelet's root-owned 0640 log files (owner permission, no capability): documented in
# deploy/k8s/logging/daemonset.yaml and the sidecar overlay, whose namespace is labelled privileged for it.
K8S_ROOT_ALLOWED = {"fluent-bit"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


def k8s_workloads() -> list[tuple[str, dict[str, Any]]]:
    """Every workload; an overlay's patch (no selector) is checked merged over its base's pod-level fields."""
    if not K8S.exists():
        pytest.skip("deploy/k8s not written yet")
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in WORKLOADS:
                found.append((f"{path.relative_to(REPO)}:{doc['metadata']['name']}", doc))
    bases = {(d["kind"], d["metadata"]["name"]): d for _, d in found if "selector" in d.get("spec", {})}
    merged = []
    for where, doc in found:
        base = bases.get((doc["kind"], doc["metadata"]["name"]))
        if "selector" not in doc.get("spec", {}) and base is not None:
            pod = {k: v for k, v in _pod_spec(base).items() if k not in ("containers", "initContainers")}
            pod |= _pod_spec(doc)
            merged.append((where, {**doc, "spec": {"template": {"spec": pod}}}))
        else:
            merged.append((where, doc))
    return merged


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec_root = doc["spec"]
    if "jobTemplate" in spec_root:
        spec_root = spec_root["jobTemplate"]["spec"]
    spec: dict[str, Any] = spec_root["template"]["spec"]
    return spec


def _container_problems(name: str, container: dict[str, Any], pod_ctx: dict[str, Any]) -> list[str]:
    ctx = container.get("securityContext", {})
    capabilities = ctx.get("capabilities", {})
    checks = {
        "allowPrivilegeEscalation is not false": ctx.get("allowPrivilegeEscalation") is not False,
        "root filesystem is writable": ctx.get("readOnlyRootFilesystem") is not True,
        "capabilities not dropped": "ALL" not in capabilities.get("drop", []),
        "adds capabilities or is privileged": bool(capabilities.get("add") or ctx.get("privileged")),
        "no RuntimeDefault seccomp profile": (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get(
            "type"
        )
        != "RuntimeDefault",
    }
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
    checks["may run as root"] = container["name"] not in K8S_ROOT_ALLOWED and (non_root is not True or uid == 0)
    found = [f"{name}: {problem}" for problem, failed in checks.items() if failed]
    found += [
        f"{name}: {env['name']} is a literal, not a secretKeyRef"
        for env in container.get("env", [])
        if SECRET_NAME.search(env["name"]) and "value" in env
    ]
    return found


def test_kubernetes_containers_are_locked_down() -> None:
    problems = []
    for where, doc in k8s_workloads():
        pod = _pod_spec(doc)
        problems += [f"{where}: {flag}" for flag in ("hostNetwork", "hostPID", "hostIPC") if pod.get(flag)]
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: automountServiceAccountToken is not false")
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            problems += _container_problems(f"{where}/{container['name']}", container, pod.get("securityContext", {}))
    assert not problems, "\n".join(problems)


def test_the_svc_container_never_runs_as_root() -> None:
    svc = [
        (where, container)
        for where, doc in k8s_workloads()
        for container in _pod_spec(doc).get("containers", [])
        if container["name"] == "svc"
    ]
    assert svc, "no svc container in deploy/k8s"
    for where, doc in k8s_workloads():
        pod_ctx = _pod_spec(doc).get("securityContext", {})
        for container in _pod_spec(doc).get("containers", []):
            if container["name"] == "svc":
                ctx = container.get("securityContext", {})
                assert ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is True, where
                assert ctx.get("runAsUser", pod_ctx.get("runAsUser")) not in (0, None), where
