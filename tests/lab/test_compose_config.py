"""The real Compose v2 (scripts/install-peers) accepts docker-compose.yml: schema, interpolation, references.

Skipped with a reason on a laptop without the binary; a failure under CI=true (tests.peers.binaries.peer)."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from svc.config import SETTINGS, Config
from tests.peers.binaries import peer

from .files import COMPOSE, REPO


def _compose(*args: str) -> subprocess.CompletedProcess[str]:
    binary = peer("docker-compose")
    # A clean environment: the file must resolve with no variables set (every ${VAR} has a default).
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [binary, "--project-directory", str(REPO), "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """`docker-compose config` output: the file as Compose itself understands it."""
    result = _compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_compose_v2_validates_the_file_quietly() -> None:
    result = _compose("config", "--quiet")
    assert (result.returncode, result.stderr.strip()) == (0, "")


def test_compose_v2_is_what_validates_it() -> None:
    result = _compose("version", "--short")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("2."), result.stdout


def test_every_variable_resolves_to_its_default(resolved: dict[str, Any]) -> None:
    env = resolved["services"]["svc"]["environment"]
    assert env["SENTRY_DSN"] == "http://lab@spotlight:8969/1"
    assert resolved["services"]["loadgen"]["environment"]["LOADGEN_RPS"] == "5"


def test_every_variable_compose_sets_for_svc_is_one_svc_declares(resolved: dict[str, Any]) -> None:
    # A misspelt name (OTEL_EXPORTER_OTLP_ENDPIONT) would be ignored by svc without a word: its default would win.
    given = set(resolved["services"]["svc"]["environment"])
    assert given - {s.env for s in SETTINGS} == set()


def test_svc_accepts_its_compose_environment(resolved: dict[str, Any]) -> None:
    # Raises ConfigError (what makes svc exit 2 at start) for any value svc would refuse.
    config = Config.from_env(resolved["services"]["svc"]["environment"].get)
    assert (config.host, config.otlp_endpoint) == ("0.0.0.0", "http://jaeger:4317")


def test_shell_healthchecks_keep_their_dollar_signs_after_interpolation(resolved: dict[str, Any]) -> None:
    # `$$resp` in the file reaches bash as `$resp`; a single `$` would be interpolated away (to an empty string,
    # with a warning). `config` prints the resolved model re-escaped, so the survivor shows as `$$resp` here.
    for name in ("elasticsearch", "kibana"):
        script = resolved["services"][name]["healthcheck"]["test"][-1]
        assert "[[ $$resp ==" in script, f"{name}: {script}"


def test_compose_parses_every_published_port_as_loopback(resolved: dict[str, Any]) -> None:
    ports = [p for svc in resolved["services"].values() for p in svc.get("ports", [])]
    assert ports
    assert {p["host_ip"] for p in ports} == {"127.0.0.1"}


def test_compose_reads_the_memory_limits_in_bytes(resolved: dict[str, Any]) -> None:
    total = sum(int(svc["mem_limit"]) for svc in resolved["services"].values())
    assert 0 < total <= 4 * 1024**3
