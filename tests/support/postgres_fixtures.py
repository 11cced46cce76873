"""Fixtures for tests that run against both stores: a session-wide PostgreSQL cluster and a fresh database each."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.postgres import PostgresCluster
from svc.config import Config
from tests.peers.binaries import peer

__all__ = ["STORES", "postgres_cluster", "postgres_url", "store_config", "store_env"]

# The parametrisation every store-facing test uses: ids show which store a failure was on.
STORES = ["sqlite", "postgres"]
_names = itertools.count()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway cluster for the session (fsync off: these tests never crash the machine, only processes)."""
    with PostgresCluster(peer("postgres"), fsync=False) as cluster:
        cluster.start()
        yield cluster


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of a database created for this test alone."""
    return postgres_cluster.create_database(f"test_{next(_names)}")


@pytest.fixture(params=STORES)
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment selecting each store in turn ({} is SQLite; PostgreSQL gets a fresh database)."""
    if request.param == "sqlite":
        return {}
    return {"DATABASE_URL": request.getfixturevalue("postgres_url")}


@pytest.fixture
def store_config(store_env: dict[str, str], tmp_path: Path) -> Config:
    """Defaults on each store in turn, the SQLite file in this test's own directory."""
    return Config(database_path=str(tmp_path / "svc.db"), database_url=store_env.get("DATABASE_URL"))
