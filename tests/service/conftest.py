"""Fixtures for the service tests: a config on a fresh database, and an in-process client over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

from svc.config import Config
from tests.service.support import app_client


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Defaults, with the database in this test's own directory."""
    return Config(database_path=str(tmp_path / "svc.db"))


@pytest.fixture
def client(config: Config) -> Iterator[TestClient[ASGIApp]]:
    """The public app, started (database open, /readyz 200), served in-process."""
    with app_client(config) as started:
        yield started
