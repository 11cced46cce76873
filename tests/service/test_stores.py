"""create_store (svc/stores.py): the configuration picks the store, and its description is safe to log."""

from __future__ import annotations

from pathlib import Path

from svc.config import Config
from svc.postgres_store import PostgresStore
from svc.sqlite_store import SqliteStore
from svc.stores import create_store


def test_create_store_picks_postgres_for_a_database_url_and_sqlite_otherwise(store_config: Config) -> None:
    store = create_store(store_config)
    assert isinstance(store, PostgresStore if store_config.database_url else SqliteStore)


def test_a_postgres_description_names_host_port_and_database_but_never_the_password() -> None:
    store = create_store(Config(database_url="postgresql://svc:s3cret-pw@db.internal:6543/links"))
    assert store.description == "postgresql db.internal:6543/links"


def test_a_sqlite_description_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "svc.db"
    assert str(path) in create_store(Config(database_path=str(path))).description
