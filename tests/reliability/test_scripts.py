"""The slow reliability runs stay runnable: each script exists, is executable and starts its module."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from harness.checkout import REPO
from harness.results import SCRATCH_DIR, add_results_arguments, results_dir
from reliability import backend_faults, edge, shutdown, soak
from reliability.load import require_loopback
from reliability.report import RESULTS_DIR

SCRIPTS = {
    "soak": soak,
    "shutdown-under-load": shutdown,
    "backend-faults": backend_faults,
    "edge": edge,
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_script_runs_its_module(name: str) -> None:
    script = REPO / "scripts" / name
    assert os.access(script, os.X_OK), f"{script} is not executable"
    module = SCRIPTS[name].__name__
    assert re.search(rf"python -m {re.escape(module)}\b", script.read_text()), script.read_text()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_each_module_has_a_working_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        SCRIPTS[name].main(["--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["http://10.0.0.1:8000", "http://example.com", "http://0.0.0.0:8000"])
def test_the_load_generator_refuses_anything_but_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        require_loopback(url)


def _status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout


def _ignored(path: Path) -> bool:
    done = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False)
    return done.returncode == 0


RESULT_CLIS = {"soak": soak.main, "shutdown-under-load": shutdown.main, "backend-faults": backend_faults.main}


@pytest.mark.parametrize("name", sorted(RESULT_CLIS))
def test_each_script_offers_write_results_and_out(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        RESULT_CLIS[name](["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--write-results write into reliability/results/" in text
    assert "(default results/reliability/)" in text


def test_results_go_to_a_git_ignored_folder_unless_write_results_is_given(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_results_arguments(parser, RESULTS_DIR)
    default = results_dir(parser.parse_args([]))
    assert default == SCRATCH_DIR / "reliability"
    assert _ignored(default / "soak.json"), f"{default} must be ignored by git"
    assert results_dir(parser.parse_args(["--write-results"])) == RESULTS_DIR
    assert not _ignored(RESULTS_DIR / "soak.json"), "the committed reports must stay tracked"
    assert results_dir(parser.parse_args(["--out", str(tmp_path)])) == tmp_path
    with pytest.raises(SystemExit):
        parser.parse_args(["--write-results", "--out", str(tmp_path)])


@pytest.mark.slow
def test_a_script_run_with_its_defaults_leaves_the_checkout_clean() -> None:
    # A real, tiny run of the backend-faults script (one case, half a second per run) through its shell script; so
    # short a run may report a problem (exit 1: a drop not yet counted), but it writes its result all the same.
    before = _status()
    name = "scripts-test-tiny-run"
    command = [str(REPO / "scripts" / "backend-faults"), "--duration", "0.5", "--rate", "50", "--name", name]
    command += ["--only", "grpc:refuse:ok"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert _status() == before, "the run changed tracked or unignored files"
    written = SCRATCH_DIR / "reliability" / f"{name}.json"
    assert json.loads(written.read_text())["duration_s"] == 0.5
