"""svc/buildinfo.py on its own: what a git work tree says (commit, time, dirty) and what the service reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from svc.buildinfo import STAMP, read_build_info, read_git
from tests.support.git_fixtures import git

REPO = Path(__file__).resolve().parent.parent.parent


def test_a_clean_work_tree_reports_its_commit_and_time_and_not_dirty(git_work_tree: Path) -> None:
    assert read_git(git_work_tree) == {
        "commit": git(git_work_tree, "rev-parse", "HEAD"),
        "commit_time": git(git_work_tree, "log", "-1", "--format=%cI"),
        "dirty": False,
    }


def test_a_changed_tracked_file_makes_the_work_tree_dirty(git_work_tree: Path) -> None:
    (git_work_tree / "tracked.txt").write_text("two\n")
    assert read_git(git_work_tree)["dirty"] is True


def test_an_untracked_file_does_not_make_the_work_tree_dirty(git_work_tree: Path) -> None:
    (git_work_tree / "new.txt").write_text("untracked\n")
    assert read_git(git_work_tree)["dirty"] is False


def test_a_directory_outside_git_reports_none_for_everything(tmp_path: Path) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    assert read_git(outside) == {"commit": None, "commit_time": None, "dirty": None}


def test_the_checkout_reports_the_commit_git_names(tmp_path: Path) -> None:
    if STAMP.exists() or not (REPO / ".git").exists():
        pytest.skip("not a plain git checkout: a built package reports its stamp instead")
    info = read_build_info()
    assert info.commit == git(REPO, "rev-parse", "HEAD")
    assert info.python
