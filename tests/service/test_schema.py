"""Schema management on both stores: a recorded version, replicas migrating at once, a newer schema refused."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import threading
from pathlib import Path

import asyncpg
import pytest

from harness.service import base_env, log_lines
from svc import pg_schema, sqlite_store
from svc.main import run
from svc.postgres_store import PoolSettings, PostgresStore

POOL = PoolSettings(size=2, pool_timeout=5, query_timeout=5)


def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def _record_newer_schema(store_env: dict[str, str], tmp_path: Path) -> int:
    """Mark the store's database as migrated by a future build; the version it now claims."""
    if "DATABASE_URL" in store_env:
        newer = pg_schema.SCHEMA_VERSION + 1

        async def go() -> None:
            conn = await asyncpg.connect(store_env["DATABASE_URL"])
            try:
                await conn.execute("CREATE TABLE svc_schema (version integer PRIMARY KEY, applied_at timestamptz)")
                await conn.execute("INSERT INTO svc_schema VALUES ($1, now())", newer)
            finally:
                await conn.close()

        asyncio.run(go())
        return newer
    newer = sqlite_store.SCHEMA_VERSION + 1
    with sqlite3.connect(tmp_path / "svc.db") as conn:
        conn.execute(f"PRAGMA user_version={newer}")
    return newer


def test_a_newer_schema_refuses_to_start_with_one_line(store_env: dict[str, str], tmp_path: Path) -> None:
    newer = _record_newer_schema(store_env, tmp_path)
    out = io.StringIO()
    code = run(["svc"], base_env(tmp_path, **store_env).get, out, stop=threading.Event())
    assert code == 1
    lines = log_lines(out.getvalue())
    [refusal] = [line for line in lines if line["message"].startswith("refusing to start")]
    assert refusal["log.level"] == "error"
    assert f"schema version {newer}" in refusal["message"]
    assert "run a newer svc" in refusal["message"]
    assert "error.stack_trace" not in refusal, "one line, not a traceback"


def test_sqlite_records_its_schema_version(tmp_path: Path) -> None:
    store = sqlite_store.SqliteStore(str(tmp_path / "svc.db"))

    async def go() -> None:
        await store.open()
        await store.close()

    asyncio.run(go())
    with sqlite3.connect(tmp_path / "svc.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (sqlite_store.SCHEMA_VERSION,)


def test_replicas_starting_at_once_migrate_once(postgres_url: str) -> None:
    # Eight stores opening together on an empty database: without the advisory lock CREATE TABLE races
    # ("duplicate key value violates unique constraint pg_type_typname_nsp_index").
    async def go() -> None:
        stores = [PostgresStore(postgres_url, POOL) for _ in range(8)]
        await asyncio.gather(*(store.open() for store in stores))
        await asyncio.gather(*(store.ping() for store in stores))
        await asyncio.gather(*(store.close() for store in stores))

    asyncio.run(go())
    rows = _fetch(postgres_url, "SELECT version FROM svc_schema ORDER BY version")
    assert [row["version"] for row in rows] == list(range(1, pg_schema.SCHEMA_VERSION + 1))


def test_postgres_slug_uniqueness_is_a_constraint(postgres_url: str) -> None:
    async def go() -> None:
        store = PostgresStore(postgres_url, POOL)
        await store.open()
        await store.close()

    asyncio.run(go())
    rows = _fetch(
        postgres_url,
        "SELECT conname FROM pg_constraint WHERE conrelid = 'links'::regclass AND contype = 'u'",
    )
    assert [row["conname"] for row in rows] == ["links_slug_key"]


@pytest.mark.parametrize("opened", [1, 2])
def test_reopening_an_up_to_date_postgres_schema_changes_nothing(postgres_url: str, opened: int) -> None:
    async def go() -> None:
        for _ in range(opened):
            store = PostgresStore(postgres_url, POOL)
            await store.open()
            await store.ping()
            await store.close()

    asyncio.run(go())
    assert len(_fetch(postgres_url, "SELECT version FROM svc_schema")) == pg_schema.SCHEMA_VERSION
