"""The benchmark commands write to the git-ignored results/ folder unless --write-results is given."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.cli import parse_args
from harness.results import SCRATCH_DIR, results_dir

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "bench" / "results"


def _ignored(path: Path) -> bool:
    return subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False).returncode == 0


def test_bench_writes_to_an_ignored_folder_by_default() -> None:
    out = results_dir(parse_args([]))
    assert out == SCRATCH_DIR / "bench"
    assert _ignored(out / "latest.json")


def test_bench_write_results_replaces_the_committed_report() -> None:
    assert results_dir(parse_args(["--write-results"])) == COMMITTED
    assert (COMMITTED / "latest.json").is_file()
    assert not _ignored(COMMITTED / "latest.json")


def test_bench_out_and_write_results_exclude_each_other(tmp_path: Path) -> None:
    assert results_dir(parse_args(["--out", str(tmp_path)])) == tmp_path
    with pytest.raises(SystemExit):
        parse_args(["--out", str(tmp_path), "--write-results"])
