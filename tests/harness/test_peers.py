"""harness.peers: a peer binary is found through its env var, then scripts/install-peers' peers.env, then PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.peers import find_peer, is_executable, read_env_file


def _executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


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


def test_a_non_executable_candidate_is_skipped_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.write_text("not a binary")
    on_path = _executable(tmp_path / "jaeger")
    monkeypatch.setenv("JAEGER_BIN", str(plain))
    monkeypatch.setenv("SVC_PEERS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_peer("jaeger") == str(on_path)


def test_nothing_anywhere_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WRK_BIN", raising=False)
    monkeypatch.setenv("SVC_PEERS_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_peer("wrk") is None


def test_a_directory_is_not_an_executable(tmp_path: Path) -> None:
    assert not is_executable(str(tmp_path))
    assert not is_executable(None)
    assert is_executable(str(_executable(tmp_path / "x")))
