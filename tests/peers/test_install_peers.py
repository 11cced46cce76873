"""scripts/install-peers: warns and carries on without root/apt on a laptop, fails under CI=true, and is idempotent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from harness.peers import ENV_VARS, cache_dir, read_env_file
from tests.peers.binaries import require_peer

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-peers"
# Just enough of a system for the script itself: no apt-get, dpkg, go or prometheus on this PATH.
BASIC_TOOLS = (
    "bash",
    "dirname",
    "mkdir",
    "awk",
    "sort",
    "id",
    "cat",
    "mv",
    "rm",
    "head",
    "cut",
    "grep",
    "sed",
    "sha256sum",
)


@pytest.fixture
def bare_path(tmp_path: Path) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in BASIC_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def run_installer(*peers: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *peers], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_without_apt_it_warns_and_succeeds_on_a_laptop(bare_path: str, tmp_path: Path) -> None:
    env = {"PATH": bare_path, "HOME": str(tmp_path), "SVC_PEERS_CACHE": str(tmp_path / "cache")}
    result = run_installer("prometheus", "compose", "chromium", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING: prometheus not installed" in result.stderr
    assert "WARNING: docker-compose not installed" in result.stderr
    assert "WARNING: chromium not installed" in result.stderr
    assert "tests that need it will be skipped" in result.stderr
    assert read_env_file(tmp_path / "cache" / "peers.env") == {}


def test_without_apt_it_fails_under_ci(bare_path: str, tmp_path: Path) -> None:
    env = {"PATH": bare_path, "HOME": str(tmp_path), "SVC_PEERS_CACHE": str(tmp_path / "cache"), "CI": "true"}
    result = run_installer("prometheus", env=env)
    assert result.returncode == 1
    assert "ERROR: prometheus not installed" in result.stderr


def test_without_maven_elasticsearch_is_a_warning_on_a_laptop(bare_path: str, tmp_path: Path) -> None:
    env = {"PATH": bare_path, "HOME": str(tmp_path), "SVC_PEERS_CACHE": str(tmp_path / "cache")}
    result = run_installer("elasticsearch", env=env)
    assert result.returncode == 0, result.stderr
    assert "WARNING: elasticsearch not installed" in result.stderr
    assert "ELASTICSEARCH_BIN" not in read_env_file(tmp_path / "cache" / "peers.env")


def test_an_unknown_peer_is_a_usage_error(tmp_path: Path) -> None:
    result = run_installer("nginx", env={**os.environ, "SVC_PEERS_CACHE": str(tmp_path)})
    assert result.returncode == 2
    assert "unknown peer 'nginx'" in result.stderr


def test_a_second_run_only_checks_the_cache() -> None:
    # Needs an earlier run (CI runs the installer first): skips on a laptop without the peers, fails under CI.
    recorded = read_env_file(cache_dir() / "peers.env")
    for name in ("prometheus", "jaeger", "docker-compose", "elasticsearch"):
        require_peer(name, recorded.get(ENV_VARS[name]))
    started = time.monotonic()
    result = run_installer("prometheus", "jaeger", "compose", "elasticsearch", env=dict(os.environ))
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "jaeger v1.76.0: cached" in result.stderr
    assert re.search(r"elasticsearch [0-9.]+: cached", result.stderr), result.stderr
    assert "cached" in result.stderr.split("docker-compose", 1)[1]
    assert elapsed < 10, f"a cached run took {elapsed:.1f}s"
    assert set(read_env_file(cache_dir() / "peers.env")) <= set(ENV_VARS.values())
