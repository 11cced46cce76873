"""Hatch build hook: stamps git commit, commit time and dirty flag into the wheel as svc/_build_info.json."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


def _read_git(root: Path) -> dict[str, str | bool | None]:
    """svc.buildinfo.read_git, loaded from its file: one reader, so a stamp and a live checkout never disagree
    (a failed `git status` is dirty None, unknown, in both). By path because the build env does not install svc."""
    spec = importlib.util.spec_from_file_location("_svc_buildinfo", root / "svc" / "buildinfo.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {root / 'svc' / 'buildinfo.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the importlib recipe: dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    found: dict[str, str | bool | None] = module.read_git(root)
    return found


class StampBuildInfo(BuildHookInterface):  # type: ignore[misc]
    """Writes the stamp for wheels; editable installs read git live instead (svc/buildinfo.py)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        out = Path(self.directory) / "_build_info.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(_read_git(Path(self.root))))
        build_data["force_include"][str(out)] = "svc/_build_info.json"
