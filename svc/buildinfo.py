"""Build info, like Go's debug.ReadBuildInfo: stamped into the wheel at build time, else read from git."""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

__all__ = ["BuildInfo", "read_build_info", "read_git"]

# Written by hatch_build.py into built wheels (and so into the Docker image); absent in a checkout.
STAMP = Path(__file__).with_name("_build_info.json")


@dataclass(frozen=True, slots=True)
class BuildInfo:
    """What was built: any value svc could not find is None, never an error."""

    version: str | None
    commit: str | None
    commit_time: str | None
    dirty: bool | None
    python: str = platform.python_version()


def read_git(repo: Path) -> dict[str, str | bool | None]:
    """Commit, commit time and dirty flag of the git work tree at repo; Nones where git cannot say."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=5, check=True)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "commit_time": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "commit": commit,
        "commit_time": git("log", "-1", "--format=%cI"),
        "dirty": None if status is None else status != "",
    }


def _package_version() -> str | None:
    try:
        return metadata.version("svc")
    except metadata.PackageNotFoundError:
        return None


def read_build_info() -> BuildInfo:
    """The stamp if the package was built, else git if running from a checkout, else Nones."""
    try:
        stamped = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        stamped = None
    if not isinstance(stamped, dict):
        checkout = Path(__file__).resolve().parent.parent
        stamped = read_git(checkout) if (checkout / ".git").exists() else {}

    def text(key: str) -> str | None:
        value = stamped.get(key)
        return value if isinstance(value, str) and value else None

    dirty = stamped.get("dirty")
    return BuildInfo(
        version=_package_version(),
        commit=text("commit"),
        commit_time=text("commit_time"),
        dirty=dirty if isinstance(dirty, bool) else None,
    )
