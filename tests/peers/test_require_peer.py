"""A missing peer skips its tests on a laptop and fails them under CI=true; an installed one resolves to its path."""

from __future__ import annotations

from pathlib import Path

import pytest

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
