"""harness.checkout: the commit and dirty flag the reports print are svc's own reading; unknown stays None."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness.checkout import REPO, Checkout, read_checkout

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_a_clean_checkout_has_its_commit_and_is_not_dirty(git_work_tree: Path) -> None:
    found = read_checkout(git_work_tree)
    assert re.fullmatch(r"[0-9a-f]{40}", str(found.commit))
    assert found.short == str(found.commit)[:12]
    assert found.dirty is False


def test_a_failed_git_status_is_unknown_not_clean(git_work_tree: Path) -> None:
    # A corrupt index: `git rev-parse HEAD` still answers, `git status` exits 128.
    (git_work_tree / ".git" / "index").write_text("garbage")
    found = read_checkout(git_work_tree)
    assert found.commit is not None
    assert found.dirty is None


def test_outside_a_repository_nothing_is_known(tmp_path: Path) -> None:
    assert read_checkout(tmp_path) == Checkout(commit=None, dirty=None)
    assert read_checkout(tmp_path).short is None


def test_repo_is_the_checkout_holding_svc() -> None:
    assert (REPO / "svc" / "__init__.py").is_file()
    assert (REPO / "pyproject.toml").is_file()
