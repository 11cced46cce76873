"""Fixtures of the benchmark's smoke tests."""

from __future__ import annotations

import pytest

from tests.peers.binaries import peer


@pytest.fixture(scope="session")
def wrk() -> str:
    """wrk from scripts/install-peers: skipped on a laptop without it, a failure under CI=true."""
    return peer("wrk")
