"""hatch_build.py's stamp in a real wheel: the commit and dirty flag svc's reader finds; null when git cannot say."""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest

from harness.checkout import REPO

pytestmark = pytest.mark.skipif(shutil.which("uv") is None or shutil.which("git") is None, reason="needs uv and git")


def _stamp_of_wheel_built_in(clone: Path, out: Path) -> dict[str, Any]:
    subprocess.run(
        ["uv", "build", "--wheel", "--out-dir", str(out)], cwd=clone, check=True, timeout=300, capture_output=True
    )
    (wheel,) = out.glob("svc-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        stamp: dict[str, Any] = json.loads(archive.read("svc/_build_info.json"))
    return stamp


def test_a_failed_git_status_stamps_dirty_null_not_clean(tmp_path: Path) -> None:
    clone = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60)
    # A corrupt index: `git rev-parse HEAD` still answers, `git status` exits 128.
    (clone / ".git" / "index").write_text("garbage")
    stamp = _stamp_of_wheel_built_in(clone, tmp_path / "dist")
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    assert stamp["commit"] == head.stdout.strip()
    assert stamp["dirty"] is None
