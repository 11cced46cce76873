"""The lab's Prometheus config and alert rules pass the real promtool: syntax, rules, and the rules' unit tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.peers.binaries import peer
from tests.peers.prometheus import LAB_CONFIG, derive_config

PROMETHEUS_DIR = LAB_CONFIG.parent


def promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run([peer("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_lab_prometheus_config_passes_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_promtool_check_rules() -> None:
    result = promtool("check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 rules found" in result.stdout


def test_alert_rules_unit_tests_pass() -> None:
    result = promtool("test", "rules", "rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alert_rules_unit_tests_catch_a_wrong_threshold(tmp_path: Path) -> None:
    # Guards the guard: the unit tests must fail when the rule they test changes meaning.
    (tmp_path / "rules.yml").write_text((PROMETHEUS_DIR / "rules.yml").read_text().replace("> 0.05", "> 0.5"))
    (tmp_path / "rules.test.yml").write_text((PROMETHEUS_DIR / "rules.test.yml").read_text())
    result = promtool("test", "rules", "rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "SvcHighErrorRate" in result.stdout + result.stderr


def test_alert_rules_select_the_metric_names_svc_exports() -> None:
    rules = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())
    exprs = " ".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    assert "http_server_requests_total" in exprs
    assert "http_server_request_duration_seconds_bucket" in exprs
    assert 'up{job="svc"}' in exprs


def test_derived_test_config_keeps_the_lab_job_names_and_passes_promtool(tmp_path: Path) -> None:
    config = derive_config(LAB_CONFIG, {"svc": "127.0.0.1:9999"}, "127.0.0.1:9998")
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert jobs == {"svc": ["127.0.0.1:9999"], "prometheus": ["127.0.0.1:9998"]}
    assert all(Path(rule_file).is_absolute() for rule_file in config["rule_files"])
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_derived_config_rejects_a_job_the_lab_does_not_have() -> None:
    with pytest.raises(ValueError, match=r"not in prometheus\.yml"):
        derive_config(LAB_CONFIG, {"svc-admin": "127.0.0.1:1"}, "127.0.0.1:2")
