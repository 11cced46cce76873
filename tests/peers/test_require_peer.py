"""A missing peer skips its tests on a laptop and fails them under CI=true; found peers resolve to their paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.peers import find_peer, read_env_file
from tests.peers.binaries import require_peer


def test_missing_peer_skips_with_the_installer_hint_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"jaeger not installed: run scripts/install-peers"):
        require_peer("jaeger", "/nonexistent/jaeger")


def test_missing_peer_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"prometheus not installed: run scripts/install-peers"):
        require_peer("prometheus", "/nonexistent/prometheus")


def test_unknown_path_fails_under_ci_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception):
        require_peer("promtool", None)


def test_a_file_that_is_not_executable_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    plain = tmp_path / "jaeger"
    plain.write_text("not a binary")
    with pytest.raises(pytest.skip.Exception):
        require_peer("jaeger", str(plain))


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_installed_peer_resolves_to_its_path(tmp_path: Path) -> None:
    binary = _executable(tmp_path / "jaeger")
    assert require_peer("jaeger", str(binary)) == str(binary)


def test_env_var_wins_over_the_installer_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from_env_file = _executable(tmp_path / "from-file")
    from_env_var = _executable(tmp_path / "from-var")
    (tmp_path / "peers.env").write_text(f"# comment\nJAEGER_BIN={from_env_file}\n")
    monkeypatch.setenv("SVC_PEERS_CACHE", str(tmp_path))
    monkeypatch.delenv("JAEGER_BIN", raising=False)
    assert find_peer("jaeger") == str(from_env_file)
    monkeypatch.setenv("JAEGER_BIN", str(from_env_var))
    assert find_peer("jaeger") == str(from_env_var)


def test_path_is_the_last_resort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    on_path = _executable(tmp_path / "promtool")
    monkeypatch.setenv("SVC_PEERS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("PROMTOOL_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_peer("promtool") == str(on_path)


def test_env_file_parsing_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    env_file = tmp_path / "peers.env"
    env_file.write_text("# header\n\nPROMETHEUS_BIN=/usr/bin/prometheus\nJAEGER_BIN=/c/jaeger-v1.76.0/jaeger\n")
    assert read_env_file(env_file) == {
        "PROMETHEUS_BIN": "/usr/bin/prometheus",
        "JAEGER_BIN": "/c/jaeger-v1.76.0/jaeger",
    }
    assert read_env_file(tmp_path / "absent.env") == {}
