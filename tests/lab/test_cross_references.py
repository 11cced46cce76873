"""Every host:port any lab config points at is a compose service listening there (or a port published on
127.0.0.1 for links a browser or the host opens): a renamed service or moved port breaks this test, not the lab."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from .compose_model import container_ports, environment, published
from .files import DEPLOY, FLUENT_BIT, LAB_CHECK, load_json, load_script, load_yaml, services
from .fluentbit import Pipeline

URL = re.compile(r"https?://(?:[^@/\s\"']+@)?([A-Za-z0-9_.-]+):(\d{2,5})")
LOOPBACK = {"127.0.0.1", "localhost"}


@dataclass(frozen=True)
class Ref:
    """A place (`where`) that expects `host:port` to answer."""

    where: str
    host: str
    port: int


def urls_in(where: str, text: str) -> list[Ref]:
    """Every http(s)://host:port in text."""
    return [Ref(where, host, int(port)) for host, port in URL.findall(text)]


def collect() -> list[Ref]:
    """All references in the lab's configs, scripts and compose file."""
    refs: list[Ref] = []
    for name, svc in services().items():
        for key, value in environment(svc).items():
            refs += urls_in(f"compose {name}.environment.{key}", value)
        address = svc.get("logging", {}).get("options", {}).get("fluentd-address")
        if address:
            host, port = address.rsplit(":", 1)
            refs.append(Ref(f"compose {name}.logging", host, int(port)))
    output = Pipeline(FLUENT_BIT).es_output("svc")
    refs.append(Ref("fluent-bit es output", str(output["host"]), int(output["port"])))
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                # "localhost" inside Prometheus is Prometheus itself, which compose publishes on the same port.
                refs.append(Ref(f"prometheus job {job['job_name']}", host, int(port)))
    for path in (DEPLOY / "grafana").rglob("*"):
        if path.suffix in {".yaml", ".json"}:
            refs += urls_in(f"grafana {path.name}", path.read_text())
    refs += urls_in("jaeger config.yaml", (DEPLOY / "jaeger" / "config.yaml").read_text())
    for script in (DEPLOY / "elasticsearch" / "setup.py", DEPLOY / "kibana" / "setup.py"):
        refs += urls_in(str(script.relative_to(DEPLOY)), script.read_text())
    lab_check = load_script(LAB_CHECK, "lab_check_refs")
    for name, (base, _) in lab_check.ENDPOINTS.items():
        refs += urls_in(f"lab-check {name}", base)
    return refs


def problem(ref: Ref, svcs: dict[str, dict[str, Any]]) -> str | None:
    """Why ref would not connect in the lab, or None."""
    if ref.host in LOOPBACK:
        if any(p.host_port == ref.port and p.host_ip == "127.0.0.1" for s in svcs.values() for p in published(s)):
            return None
        return f"{ref.where}: nothing publishes {ref.host}:{ref.port} on 127.0.0.1"
    if ref.host not in svcs:
        return f"{ref.where}: {ref.host!r} is not a compose service"
    if ref.port not in container_ports(svcs[ref.host]):
        return (
            f"{ref.where}: {ref.host} does not listen on {ref.port} (ports/expose: {container_ports(svcs[ref.host])})"
        )
    return None


@pytest.fixture(scope="module")
def refs() -> list[Ref]:
    return collect()


def test_references_are_found_in_every_config(refs: list[Ref]) -> None:
    # Guards the collector itself: each source must contribute, or a broken regex would make the next test vacuous.
    sources = {r.where.split()[0] for r in refs}
    assert {
        "compose",
        "fluent-bit",
        "prometheus",
        "grafana",
        "jaeger",
        "elasticsearch/setup.py",
        "kibana/setup.py",
        "lab-check",
    } <= sources


def test_every_referenced_host_and_port_is_served_in_the_lab(refs: list[Ref]) -> None:
    svcs = services()
    assert [p for r in refs if (p := problem(r, svcs))] == []


def test_a_wrong_port_is_reported() -> None:
    assert problem(Ref("example", "jaeger", 4319), services()) is not None
    assert problem(Ref("example", "elastic", 9200), services()) is not None
    assert problem(Ref("example", "localhost", 1234), services()) is not None


def test_healthchecks_probe_ports_their_own_service_listens_on() -> None:
    bad = []
    for name, svc in services().items():
        text = " ".join(str(part) for part in svc.get("healthcheck", {}).get("test", []))
        for port in re.findall(r"127\.0\.0\.1[:/](\d{2,5})", text):
            if int(port) not in container_ports(svc):
                bad.append(f"{name} probes {port}")
    assert bad == []


def test_kibana_links_point_at_the_published_jaeger_ui() -> None:
    body = load_json(DEPLOY / "kibana" / "data-view.json")
    template = body["data_view"]["fieldFormats"]["trace.id"]["params"]["urlTemplate"]
    env = environment(services()["kibana-setup"])
    url = template.replace("${JAEGER_UI_URL}", env["JAEGER_UI_URL"])
    assert url == "http://localhost:16686/trace/{{value}}"
    assert problem(urls_in("kibana trace link", url)[0], services()) is None
