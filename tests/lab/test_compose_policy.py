"""docker-compose.yml keeps the lab's rules: pinned images, loopback-only ports, hardened and bounded containers."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .compose_model import environment, is_one_shot, published, size_bytes
from .files import COMPOSE, compose, services

MEMORY_BUDGET = 4 * 1024**3
# Images that cannot run a probe (distroless: no shell, no HTTP client). Nothing waits on them being healthy.
NO_HEALTHCHECK = {"fluent-bit": "distroless image; scripts/lab-check probes its /api/v1/health from the host"}
# Images that write under their own install directory at start, so a read-only root would break them.
WRITABLE_ROOT = {"elasticsearch", "kibana"}
VERSION_TAG = re.compile(r":v?\d+\.\d+\.\d+(-[\w.-]+)?$")
# PostgreSQL numbers its releases major.minor (18.4 is a patch release of 18), so two parts pin it exactly.
POSTGRES_TAG = re.compile(r"^postgres:\d+\.\d+-[a-z]+$")


@pytest.fixture(scope="module")
def all_services() -> dict[str, dict[str, Any]]:
    return services()


def test_file_has_no_obsolete_version_key() -> None:
    assert "version" not in compose()


def test_every_pulled_image_is_pinned_to_an_explicit_version(all_services: dict[str, dict[str, Any]]) -> None:
    unpinned = {
        name: svc.get("image")
        for name, svc in all_services.items()
        if "build" not in svc
        and not VERSION_TAG.search(str(svc.get("image", "")))
        and not POSTGRES_TAG.match(str(svc.get("image", "")))
    }
    assert unpinned == {}


def test_no_image_uses_latest(all_services: dict[str, dict[str, Any]]) -> None:
    assert {n for n, s in all_services.items() if str(s.get("image", "")).endswith(":latest")} == set()


def test_every_published_port_is_bound_to_loopback_only(all_services: dict[str, dict[str, Any]]) -> None:
    exposed = {f"{name}:{p.host_port}": p.host_ip for name, svc in all_services.items() for p in published(svc)}
    assert exposed, "the lab publishes ports"
    assert {k: v for k, v in exposed.items() if v != "127.0.0.1"} == {}


def test_every_service_sets_no_new_privileges(all_services: dict[str, dict[str, Any]]) -> None:
    missing = {n for n, s in all_services.items() if "no-new-privileges:true" not in s.get("security_opt", [])}
    assert missing == set()


def test_every_service_drops_all_capabilities(all_services: dict[str, dict[str, Any]]) -> None:
    assert {n for n, s in all_services.items() if s.get("cap_drop") != ["ALL"]} == set()


def test_only_the_volume_init_job_adds_a_capability_and_only_chown(all_services: dict[str, dict[str, Any]]) -> None:
    added = {n: s["cap_add"] for n, s in all_services.items() if s.get("cap_add")}
    assert added == {"fluent-bit-init": ["CHOWN"]}
    assert is_one_shot(all_services["fluent-bit-init"])


def _uid(user: str) -> int:
    return int(user.split(":", maxsplit=1)[0])


def test_every_service_runs_as_a_non_root_user_except_the_chown_job(all_services: dict[str, dict[str, Any]]) -> None:
    # Explicit `user:` everywhere: no reliance on what each image happens to default to.
    root = {n for n, s in all_services.items() if "user" not in s or _uid(str(s["user"])) == 0}
    assert root == {"fluent-bit-init"}


def test_every_long_running_service_has_a_healthcheck(all_services: dict[str, dict[str, Any]]) -> None:
    lacking = {n for n, s in all_services.items() if not is_one_shot(s) and "healthcheck" not in s}
    assert lacking == set(NO_HEALTHCHECK)


def test_nothing_waits_for_a_service_that_cannot_report_health(all_services: dict[str, dict[str, Any]]) -> None:
    waits = {
        (name, dep)
        for name, svc in all_services.items()
        for dep, cond in svc.get("depends_on", {}).items()
        if cond["condition"] == "service_healthy" and dep in NO_HEALTHCHECK
    }
    assert waits == set()


def test_every_dependency_states_a_condition(all_services: dict[str, dict[str, Any]]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    bad = {
        f"{name}->{dep}"
        for name, svc in all_services.items()
        for dep, cond in (svc.get("depends_on") or {}).items()
        if not isinstance(cond, dict) or cond.get("condition") not in conditions
    }
    assert isinstance(all_services["svc"]["depends_on"], dict)
    assert bad == set()


def test_one_shot_jobs_are_awaited_until_they_succeed(all_services: dict[str, dict[str, Any]]) -> None:
    waits = {
        cond["condition"]
        for svc in all_services.values()
        for dep, cond in svc.get("depends_on", {}).items()
        if is_one_shot(all_services[dep])
    }
    assert waits == {"service_completed_successfully"}


def test_fluent_bit_starts_only_after_the_index_template_exists(all_services: dict[str, dict[str, Any]]) -> None:
    assert all_services["fluent-bit"]["depends_on"]["es-setup"]["condition"] == "service_completed_successfully"


def test_every_service_has_a_memory_limit(all_services: dict[str, dict[str, Any]]) -> None:
    assert {n for n, s in all_services.items() if "mem_limit" not in s} == set()


def test_memory_limits_sum_to_at_most_4_gib(all_services: dict[str, dict[str, Any]]) -> None:
    assert sum(size_bytes(s["mem_limit"]) for s in all_services.values()) <= MEMORY_BUDGET


def test_stated_memory_total_matches_the_limits(all_services: dict[str, dict[str, Any]]) -> None:
    stated = re.search(r"= (\d+)\.", COMPOSE.read_text())
    assert stated, "the header states the total in MiB"
    assert int(stated[1]) == sum(size_bytes(s["mem_limit"]) for s in all_services.values()) // 1024**2


def test_state_lives_only_in_declared_named_volumes(all_services: dict[str, dict[str, Any]]) -> None:
    declared = set(compose().get("volumes", {}))
    named = {str(v).split(":")[0] for s in all_services.values() for v in s.get("volumes", [])}
    named = {v for v in named if not v.startswith((".", "/"))}
    assert named == declared


def test_config_bind_mounts_are_read_only(all_services: dict[str, dict[str, Any]]) -> None:
    writable = {
        f"{n}: {v}"
        for n, s in all_services.items()
        for v in s.get("volumes", [])
        if str(v).startswith(("./", "/")) and not str(v).endswith(":ro")
    }
    assert writable == set()


def test_root_filesystems_are_read_only_where_the_image_allows(all_services: dict[str, dict[str, Any]]) -> None:
    assert {n for n, s in all_services.items() if s.get("read_only") is not True} == WRITABLE_ROOT


def test_svc_logs_go_to_fluent_bit_asynchronously_through_the_published_port(
    all_services: dict[str, dict[str, Any]],
) -> None:
    logging = all_services["svc"]["logging"]
    assert logging["driver"] == "fluentd"
    assert logging["options"]["fluentd-async"] == "true"
    host, port = logging["options"]["fluentd-address"].rsplit(":", 1)
    assert any(
        p.host_ip == host == "127.0.0.1" and p.host_port == int(port) == p.container_port == 24224
        for p in published(all_services["fluent-bit"])
    )


def test_svc_logs_wait_for_fluent_bits_acknowledgement(all_services: dict[str, dict[str, Any]]) -> None:
    # Without acks the real Fluent Bit lost one line per restart (the driver's first write after it went away).
    assert all_services["svc"]["logging"]["options"]["fluentd-request-ack"] == "true"


def test_svc_reports_errors_to_spotlight_by_default(all_services: dict[str, dict[str, Any]]) -> None:
    dsn = environment(all_services["svc"])["SENTRY_DSN"]
    assert re.fullmatch(r"\$\{SENTRY_DSN:-http://\w+@spotlight:8969/\d+\}", dsn), dsn
    assert any(p.container_port == 8969 for p in published(all_services["spotlight"]))


def test_spotlights_own_telemetry_cannot_leave_the_machine(all_services: dict[str, dict[str, Any]]) -> None:
    # Spotlight 4.11.8 sends its own errors and traces to a built-in sentry.io DSN, with no switch to stop it.
    assert "o1.ingest.us.sentry.io:127.0.0.1" in all_services["spotlight"]["extra_hosts"]


def test_svc_offers_its_fault_switch_in_the_lab(all_services: dict[str, dict[str, Any]]) -> None:
    assert environment(all_services["svc"])["FAULTS_ENABLED"] == "true"


def test_prometheus_stores_exemplars(all_services: dict[str, dict[str, Any]]) -> None:
    assert "--enable-feature=exemplar-storage" in all_services["prometheus"]["command"]


def test_elasticsearch_heap_is_pinned_under_half_its_memory_limit(all_services: dict[str, dict[str, Any]]) -> None:
    es = all_services["elasticsearch"]
    opts = environment(es)["ES_JAVA_OPTS"].split()
    heaps = {o[:4]: size_bytes(o[4:]) for o in opts if o.startswith(("-Xms", "-Xmx"))}
    assert heaps["-Xms"] == heaps["-Xmx"]
    assert heaps["-Xmx"] <= size_bytes(es["mem_limit"]) // 2


def test_elasticsearch_security_is_off_and_says_so(all_services: dict[str, dict[str, Any]]) -> None:
    # The trade-off is acceptable only with loopback-only ports (tested above) and stated in the file.
    assert environment(all_services["elasticsearch"])["xpack.security.enabled"] == "false"
    assert "xpack security OFF" in COMPOSE.read_text()


def test_secret_like_settings_are_overridable_not_hardcoded(all_services: dict[str, dict[str, Any]]) -> None:
    secretish = re.compile(r"PASSWORD|SECRET|TOKEN|DSN|API_KEY", re.IGNORECASE)
    hardcoded = {
        f"{n}.{k}": v
        for n, s in all_services.items()
        for k, v in environment(s).items()
        if secretish.search(k) and not v.startswith("${")
    }
    assert hardcoded == {}


def test_postgres_is_reachable_only_on_the_lab_network(all_services: dict[str, dict[str, Any]]) -> None:
    assert list(published(all_services["postgres"])) == []


def test_svc_uses_postgres_with_the_password_from_the_environment(all_services: dict[str, dict[str, Any]]) -> None:
    url = environment(all_services["svc"])["DATABASE_URL"]
    password = environment(all_services["postgres"])["POSTGRES_PASSWORD"]
    assert password.startswith("${POSTGRES_PASSWORD:-"), "from .env or the shell, with a lab default"
    assert url == f"postgresql://svc:{password}@postgres:5432/svc"
