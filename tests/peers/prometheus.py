"""Prometheus run with a config derived from the lab's deploy/prometheus/prometheus.yml, with an HTTP-API client."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

from harness.backends import free_port
from tests.peers.process import PeerProcess, wait_until

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
LAB_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
START_TIMEOUT = 30.0


def derive_config(
    source: Path,
    targets: Mapping[str, str],
    self_target: str,
    scrape_interval: str = "1s",
) -> dict[str, Any]:
    """The lab config with each job's targets replaced by the test's addresses.

    Job names, metrics paths and rule files stay the lab's own, so the test proves the lab's scrape setup and its
    alert rules load; a lab job the test has no target for is dropped. ``prometheus`` scrapes ``self_target``.
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    lab_jobs = {job["job_name"] for job in config["scrape_configs"]}
    unknown = set(targets) - lab_jobs
    if unknown:
        raise ValueError(f"jobs {sorted(unknown)} are not in {source.name} (its jobs: {sorted(lab_jobs)})")
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": scrape_interval,
        "scrape_timeout": scrape_interval,
        "evaluation_interval": scrape_interval,
    }
    # Rule files are relative to the lab config; the derived file lives in a temp dir.
    config["rule_files"] = [str(source.parent / name) for name in config.get("rule_files", [])]
    jobs = []
    for job in config["scrape_configs"]:
        target = self_target if job["job_name"] == "prometheus" else targets.get(job["job_name"])
        if target is not None:
            jobs.append({**job, "static_configs": [{"targets": [target]}]})
    config["scrape_configs"] = jobs
    return config


class PrometheusPeer:
    """A running Prometheus (exemplar storage on) with query helpers; ``stop()`` ends it by PID."""

    def __init__(
        self,
        binary: str,
        workdir: Path,
        targets: Mapping[str, str],
        source: Path = LAB_CONFIG,
        port: int | None = None,
    ) -> None:
        # `port` may be chosen beforehand, for a peer (Jaeger's metric backend) that must know it before we start.
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = derive_config(source, targets, f"127.0.0.1:{self.port}")
        config_path = workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(self.config))
        argv = [
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--enable-feature=exemplar-storage",  # the lab's compose command sets the same flag
        ]
        self.process = PeerProcess("prometheus", argv, workdir)
        self.http = httpx.Client(base_url=self.url, timeout=5.0)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> PrometheusPeer:
        def ready() -> bool:
            return self.http.get("/-/ready", timeout=1.0).status_code == httpx.codes.OK

        wait_until(ready, timeout, "Prometheus /-/ready", alive=self.process.check_alive)
        return self

    def _api(self, path: str, params: Mapping[str, str]) -> Any:
        response = self.http.get(f"/api/v1/{path}", params=params)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus {path} failed: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant-vector results: ``[{"metric": {...labels}, "value": [ts, "value"]}, ...]``."""
        data = self._api("query", {"query": expr})
        return list(data["result"])

    def query_exemplars(self, expr: str, lookback: float = 600.0) -> list[dict[str, Any]]:
        """``[{"seriesLabels": {...}, "exemplars": [{"labels": {"trace_id": ...}, "value", "timestamp"}]}]``."""
        now = time.time()
        return list(self._api("query_exemplars", {"query": expr, "start": str(now - lookback), "end": str(now + 60)}))

    def alert_names(self) -> set[str]:
        """Names of the alerting rules Prometheus loaded."""
        groups = self._api("rules", {"type": "alert"})["groups"]
        return {rule["name"] for group in groups for rule in group["rules"]}

    def targets(self) -> list[dict[str, Any]]:
        return list(self._api("targets", {"state": "active"})["activeTargets"])

    def wait_for_scrape(self, job: str, timeout: float = 20.0) -> dict[str, Any]:
        """The job's target once a scrape of it succeeded."""

        def scraped() -> dict[str, Any] | None:
            for target in self.targets():
                if target["labels"].get("job") == job and target["health"] == "up":
                    return target
            return None

        return wait_until(scraped, timeout, f"a successful scrape of job {job!r}", alive=self.process.check_alive)

    def wait_for_query(self, expr: str, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll an instant query until it returns at least one series."""
        alive = self.process.check_alive
        return wait_until(lambda: self.query(expr) or None, timeout, f"results of {expr!r}", alive=alive)

    def wait_for(self, probe: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
        """Poll any check against this Prometheus, failing at once if it dies."""
        return wait_until(probe, timeout, what, alive=self.process.check_alive)

    def stop(self) -> int:
        self.http.close()
        return self.process.stop()
