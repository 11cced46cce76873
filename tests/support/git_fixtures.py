"""A scratch git work tree for the tests of what svc and the harness read from git (commit, time, dirty)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

__all__ = ["git", "git_work_tree"]


def git(repo: Path, *args: str) -> str:
    """Run git in repo; its stdout, stripped (fails the test on a non-zero exit)."""
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def git_work_tree(tmp_path: Path) -> Path:
    """A git work tree with one commit of one tracked file, tracked.txt."""
    git(tmp_path, "init", "-q")
    (tmp_path / "tracked.txt").write_text("one\n")
    git(tmp_path, "add", "tracked.txt")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first")
    return tmp_path
