"""Compose v2 (Debian's docker-compose, unpacked by scripts/install-peers) validates compose files with no daemon.

The lab's own docker-compose.yml is checked with it in tests/lab/test_compose_config.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.peers.binaries import peer


def compose_config(compose_file: Path) -> subprocess.CompletedProcess[str]:
    argv = [peer("docker-compose"), "-f", str(compose_file), "config", "--quiet"]
    return subprocess.run(argv, cwd=compose_file.parent, capture_output=True, text=True, timeout=60, check=False)


def test_compose_v2_accepts_a_valid_file_and_rejects_an_unknown_key(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text('services:\n  web:\n    image: busybox:1.36\n    ports: ["127.0.0.1:8080:80"]\n')
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  web:\n    imag: busybox:1.36\n")
    accepted = compose_config(good)
    assert accepted.returncode == 0, accepted.stderr
    rejected = compose_config(bad)
    assert rejected.returncode != 0
    assert "imag" in rejected.stderr
