"""The SQLite store (the zero-setup default): WAL mode, one connection owned by one worker thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from opentelemetry.trace import Tracer

from svc.metrics import Metrics
from svc.store import (
    DuplicateSlugError,
    LinkRow,
    SchemaTooNewError,
    StorageFullError,
    StoreUnavailableError,
)
from svc.store_telemetry import QueryTelemetry

__all__ = ["SCHEMA", "SCHEMA_VERSION", "SqliteStore"]

T = TypeVar("T")

# The schema this code knows, recorded in the file's user_version. 0 is a file from before versions were recorded.
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    created_at TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 0
)
"""
# SQLite's primary result codes (the low byte of an extended code).
_FULL = sqlite3.SQLITE_FULL
_BUSY_OR_LOCKED = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(values: tuple[Any, ...]) -> LinkRow:
    return LinkRow(*values)


def _store_error(exc: sqlite3.Error) -> Exception:
    """The store error an sqlite3 error means, or exc itself when it is a bug."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == _FULL:
        return StorageFullError("the disk under the SQLite file is full")
    if code in _BUSY_OR_LOCKED:
        return StoreUnavailableError("timeout", "the SQLite file stayed locked past busy_timeout")
    return exc


class SqliteStore:
    """Async façade over one sqlite3 connection owned by a single worker thread.

    One thread means one connection and no locking games; SQLite serialises writers anyway. That thread is the
    store's "pool" of one: the time a query waits for it is the pool wait time, a queued or running query uses it.
    """

    def __init__(
        self, path: str, tracer: Tracer | None = None, metrics: Metrics | None = None, busy_timeout: float = 5.0
    ) -> None:
        self.path = path
        self._busy_timeout_ms = max(1, round(busy_timeout * 1000))
        self._metrics = metrics
        self._telemetry = QueryTelemetry("sqlite", tracer, metrics)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._inflight = 0
        if metrics is not None:
            metrics.watch_pool(lambda: min(self._inflight, 1), lambda: 1 - min(self._inflight, 1), 1)

    @property
    def description(self) -> str:
        """The file's path."""
        return f"sqlite {self.path}"

    async def open(self) -> None:
        """Create the file and schema; WAL with synchronous=NORMAL survives a process crash (kill -9)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        await self._call(self._connect)

    def _connect(self) -> None:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # How long a write waits for another process's lock (DATABASE_QUERY_TIMEOUT) before it is a 503.
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            # IMMEDIATE: a second process opening the same file waits here instead of migrating alongside.
            conn.execute("BEGIN IMMEDIATE")
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"{self.path} has schema version {version}; this build knows up to {SCHEMA_VERSION}: "
                    "run a newer svc or restore a backup"
                )
            conn.execute(SCHEMA)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        """Close the connection and stop the worker thread."""
        if self._executor is None:
            return
        if self._conn is not None:
            await self._call(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)
        self._executor = None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreUnavailableError("unavailable", "the SQLite store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _query(self, operation: str, sql: str, params: tuple[Any, ...], fetch: str) -> Any:
        submitted = time.perf_counter()
        metrics = self._metrics

        def work() -> Any:
            if metrics is not None:
                metrics.db_wait.observe(time.perf_counter() - submitted)
            if self._conn is None:
                raise StoreUnavailableError("unavailable", "the SQLite store is closed")
            try:
                cursor = self._conn.execute(sql, params)
                if fetch == "one":
                    # fetchall, not fetchone: a RETURNING statement commits only once fully stepped.
                    rows = cursor.fetchall()
                    return rows[0] if rows else None
                if fetch == "all":
                    return cursor.fetchall()
                return cursor.rowcount
            except sqlite3.IntegrityError:
                raise
            except sqlite3.Error as exc:
                mapped = _store_error(exc)
                if mapped is exc:
                    raise
                raise mapped from exc

        async def run() -> Any:
            self._inflight += 1
            try:
                return await self._call(work)
            finally:
                self._inflight -= 1

        return await self._telemetry.run(operation, sql, run)

    async def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        await self._query("SELECT", "SELECT 1", (), "one")

    async def insert(self, slug: str, url: str) -> LinkRow:
        """Store a new link; DuplicateSlugError if the slug exists."""
        sql = "INSERT INTO links (slug, url, created_at) VALUES (?, ?, ?) RETURNING id, slug, url, created_at, hits"
        try:
            row = await self._query("INSERT", sql, (slug, url, _now()), "one")
        except sqlite3.IntegrityError:
            raise DuplicateSlugError(slug) from None
        return _row(row)

    async def get(self, slug: str) -> LinkRow | None:
        """The link with this slug, or None."""
        sql = "SELECT id, slug, url, created_at, hits FROM links WHERE slug = ?"
        row = await self._query("SELECT", sql, (slug,), "one")
        return None if row is None else _row(row)

    async def page(self, after_id: int, limit: int) -> list[LinkRow]:
        """Up to limit links with id > after_id, oldest first (keyset pagination)."""
        sql = "SELECT id, slug, url, created_at, hits FROM links WHERE id > ? ORDER BY id LIMIT ?"
        rows = await self._query("SELECT", sql, (after_id, limit), "all")
        return [_row(r) for r in rows]

    async def delete(self, slug: str) -> bool:
        """Delete the link; False if there was none."""
        deleted: int = await self._query("DELETE", "DELETE FROM links WHERE slug = ?", (slug,), "count")
        return deleted > 0

    async def hit(self, slug: str) -> str | None:
        """Count a redirect and return its URL, or None if the slug is unknown."""
        sql = "UPDATE links SET hits = hits + 1 WHERE slug = ? RETURNING url"
        row = await self._query("UPDATE", sql, (slug,), "one")
        return None if row is None else str(row[0])
