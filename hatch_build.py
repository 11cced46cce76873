"""Hatch build hook: stamps git commit, commit time and dirty flag into the wheel as svc/_build_info.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _git(root: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", root, *args], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class StampBuildInfo(BuildHookInterface):  # type: ignore[misc]
    """Writes the stamp for wheels; editable installs read git live instead (svc/buildinfo.py)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        commit = _git(self.root, "rev-parse", "HEAD")
        status = _git(self.root, "status", "--porcelain", "--untracked-files=no") if commit else None
        stamp = {
            "commit": commit,
            "commit_time": _git(self.root, "log", "-1", "--format=%cI") if commit else None,
            "dirty": (status is not None) if commit else None,
        }
        out = Path(self.directory) / "_build_info.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(stamp))
        build_data["force_include"][str(out)] = "svc/_build_info.json"
