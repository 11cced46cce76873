"""The checkout the harness runs from: its root, and its commit and dirty flag as svc's own build-info reader says."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from svc.buildinfo import read_git

__all__ = ["REPO", "Checkout", "read_checkout"]

# harness/ sits at the root of the checkout; `python -m svc` and the benchmark's builds run there.
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Checkout:
    """Commit and dirty flag of a work tree; None where git could not say (never a guess: unknown is not clean)."""

    commit: str | None
    dirty: bool | None

    @property
    def short(self) -> str | None:
        """The commit's first 12 hex digits, as the reports print it."""
        return self.commit[:12] if self.commit else None


def read_checkout(repo: Path = REPO) -> Checkout:
    """What svc.buildinfo.read_git finds at repo (so the reports and /version never disagree on a failed git)."""
    found = read_git(repo)
    commit, dirty = found["commit"], found["dirty"]
    return Checkout(
        commit=commit if isinstance(commit, str) else None,
        dirty=dirty if isinstance(dirty, bool) else None,
    )
