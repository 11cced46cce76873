"""What a test does without a peer binary: skip with the reason on a laptop, fail under CI=true."""

from __future__ import annotations

import os

import pytest

from harness.peers import find_peer, is_executable

__all__ = ["peer", "require_peer"]


def require_peer(name: str, path: str | None) -> str:
    """``path`` when it is an executable file; otherwise skip the test on a laptop and fail it under CI=true."""
    if path and is_executable(path):
        return path
    reason = f"{name} not installed: run scripts/install-peers"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: a missing peer is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def peer(name: str) -> str:
    """The peer's path, found as :func:`find_peer` does, or a skip/fail as :func:`require_peer` does."""
    return require_peer(name, find_peer(name))
