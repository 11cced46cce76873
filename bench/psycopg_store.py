"""The links store on psycopg 3 (binary build, its async pool): only to measure it against asyncpg on one route.

svc ships the asyncpg store (svc/postgres_store.py); this one implements the same Store contract with the same
SQL and pool size so that the benchmark's (a-pg) and (a-pg-psycopg) rows differ by the driver alone.
It skips svc's error mapping and telemetry, which the bare variant (a) has none of either.
"""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

from svc.store import DuplicateSlugError, LinkRow

__all__ = ["PsycopgStore"]


def _row(values: Any) -> LinkRow:
    created: datetime = values[3]
    stamp = created.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return LinkRow(values[0], values[1], values[2], stamp, values[4])


class PsycopgStore:
    """Store over psycopg_pool.AsyncConnectionPool; psycopg prepares a statement after its 5th execution."""

    def __init__(self, url: str, size: int = 10) -> None:
        self._url = url
        self._size = size
        self._pool: Any = None
        # In the `bench` dependency group only: imported by name so type checks pass without it.
        self._psycopg = importlib.import_module("psycopg")
        self._pool_module = importlib.import_module("psycopg_pool")

    @property
    def description(self) -> str:
        """Which driver."""
        return "postgresql via psycopg"

    async def open(self) -> None:
        """Open the pool (the schema is svc's, created by the benchmark's seeding)."""
        self._pool = self._pool_module.AsyncConnectionPool(
            self._url, min_size=1, max_size=self._size, open=False, kwargs={"autocommit": True}
        )
        await self._pool.open(wait=True)

    async def close(self) -> None:
        """Close the pool."""
        await self._pool.close()

    async def _one(self, sql: str, *params: Any) -> Any:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def ping(self) -> None:
        """SELECT 1."""
        await self._one("SELECT 1")

    async def insert(self, slug: str, url: str) -> LinkRow:
        """INSERT ... RETURNING."""
        sql = "INSERT INTO links (slug, url) VALUES (%s, %s) RETURNING id, slug, url, created_at, hits"
        try:
            return _row(await self._one(sql, slug, url))
        except self._psycopg.errors.UniqueViolation:
            raise DuplicateSlugError(slug) from None

    async def get(self, slug: str) -> LinkRow | None:
        """The benchmark route's query."""
        row = await self._one("SELECT id, slug, url, created_at, hits FROM links WHERE slug = %s", slug)
        return None if row is None else _row(row)

    async def page(self, after_id: int, limit: int) -> list[LinkRow]:
        """Keyset page."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT id, slug, url, created_at, hits FROM links WHERE id > %s ORDER BY id LIMIT %s",
                (after_id, limit),
            )
            return [_row(r) for r in await cursor.fetchall()]

    async def delete(self, slug: str) -> bool:
        """DELETE."""
        async with self._pool.connection() as conn:
            cursor = await conn.execute("DELETE FROM links WHERE slug = %s", (slug,))
            return bool(cursor.rowcount)

    async def hit(self, slug: str) -> str | None:
        """UPDATE ... RETURNING url."""
        row = await self._one("UPDATE links SET hits = hits + 1 WHERE slug = %s RETURNING url", slug)
        return None if row is None else str(row[0])
