"""The PostgreSQL store (DATABASE_URL): an asyncpg pool, bounded in size and in every wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from opentelemetry.trace import Tracer

from svc.metrics import Metrics
from svc.pg_schema import migrate
from svc.store import (
    DuplicateSlugError,
    LinkRow,
    SchemaTooNewError,
    StorageFullError,
    StoreUnavailableError,
)
from svc.store_telemetry import QueryTelemetry

__all__ = ["PoolSettings", "PostgresStore", "server_of"]

T = TypeVar("T")
if TYPE_CHECKING:  # asyncpg's classes are generic only in its stubs
    Conn = PoolConnectionProxy[asyncpg.Record]

log = logging.getLogger("svc.store")

# How long close() lets borrowed connections come back before it cuts them.
CLOSE_TIMEOUT = 5.0
# Errors that mean "the server is gone or going", not "the query is wrong": the caller gets 503 and retries.
_GONE = (
    OSError,  # refused, reset, unreachable
    asyncpg.PostgresConnectionError,  # lost mid-query, never established
    asyncpg.OperatorInterventionError,  # 57P01 admin shutdown, 57P03 starting up (QueryCanceled is handled first)
    asyncpg.InterfaceError,  # "connection is closed"
    asyncpg.TooManyConnectionsError,
    asyncpg.ReadOnlySQLTransactionError,  # a standby after failover
)


def _discard_broken(conn: Conn) -> None:
    """Close a connection that failed mid-operation instead of letting the pool hand it out again.

    Shim for MagicStack/asyncpg#1069 (open): a connection whose server went away during an operation can go back to
    the pool still marked busy, and its next query fails with InternalClientError "cannot switch to state 12;
    another operation (2) is in progress". Seen here when the server is killed under load
    (tests/reliability/test_database_failures.py). terminate() is asyncpg's public way to drop a connection; the pool
    then opens a fresh one on the next acquire. A connection whose socket already closed has been detached from its
    proxy by the pool, and the proxy refuses every call: nothing left to drop then.
    """
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


class PoolSettings:
    """The pool's bounds, from DATABASE_POOL_SIZE, DATABASE_POOL_TIMEOUT and DATABASE_QUERY_TIMEOUT."""

    def __init__(self, size: int, pool_timeout: float, query_timeout: float) -> None:
        self.size = size
        self.pool_timeout = pool_timeout
        self.query_timeout = query_timeout


def server_of(url: str) -> tuple[str, int, str]:
    """(host, port, database) of a postgresql:// URL; the first host of a multi-host URL."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2].split(",")[0]
    host, _, port = netloc.rpartition(":") if netloc.count(":") == 1 or "]" in netloc else (netloc, "", "")
    if host.startswith("["):
        host = host[1:-1]
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "postgres"
    return host or "localhost", int(port) if port.isdigit() else 5432, database


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing to undo, so no round trip on every release.

    asyncpg's default reset sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` each time a
    connection goes back to the pool. svc never leaves session state behind: no SET, LISTEN or cursor outside a
    transaction, and its one advisory lock is transaction-scoped (pg_schema.migrate).
    """


def _timestamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(record: asyncpg.Record) -> LinkRow:
    return LinkRow(record[0], record[1], record[2], _timestamp(record[3]), record[4])


class PostgresStore:
    """The links table in PostgreSQL through one asyncpg pool.

    The pool opens no connection at start (min_size 0): a database that is down at start is a 503 from /readyz,
    not a crash loop. The schema is migrated on the first call that reaches the database.
    """

    def __init__(
        self, url: str, pool: PoolSettings, tracer: Tracer | None = None, metrics: Metrics | None = None
    ) -> None:
        self._url = url
        self._settings = pool
        self._metrics = metrics
        host, port, database = server_of(url)
        self._description = f"postgresql {host}:{port}/{database}"
        self._telemetry = QueryTelemetry("postgresql", tracer, metrics, (host, port))
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._schema_ready = False
        self._schema_lock = asyncio.Lock()
        self._retry_after = max(1, math.ceil(pool.pool_timeout))

    @property
    def description(self) -> str:
        """Host, port and database name; never the credentials."""
        return self._description

    async def open(self) -> None:
        """Create the pool and migrate if the database answers; if it does not, serving starts anyway (503s)."""
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=self._settings.size,
            timeout=self._settings.pool_timeout,  # connecting, per attempt
            command_timeout=self._settings.query_timeout,
            max_inactive_connection_lifetime=60.0,
            reset=_keep_session,
        )
        if self._metrics is not None:
            pool = self._pool
            self._metrics.watch_pool(
                lambda: pool.get_size() - pool.get_idle_size(), pool.get_idle_size, self._settings.size
            )
        try:
            await self._ensure_schema()
        except StoreUnavailableError as exc:
            log.warning("%s is not answering at start (%s); /readyz answers 503 until it does", self.description, exc)

    async def close(self) -> None:
        """Wait briefly for borrowed connections, then close every one."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT)
        except TimeoutError:
            pool.terminate()

    async def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        async with self._schema_lock:
            if self._schema_ready:
                return
            found = await self._with_connection(migrate)
            self._schema_ready = True
            log.info("%s schema ready (found version %d)", self.description, found)

    async def _with_connection(self, work: Callable[[Conn], Awaitable[T]]) -> T:
        """work(conn) on a pooled connection; every way the database can fail becomes a store error."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailableError("unavailable", "the PostgreSQL store is closed", self._retry_after)
        started = time.perf_counter()
        try:
            conn = await pool.acquire(timeout=self._settings.pool_timeout)
        except TimeoutError:
            busy = pool.get_size() >= self._settings.size and pool.get_idle_size() == 0
            reason = "pool_exhausted" if busy else "timeout"
            detail = f"no database connection within {self._settings.pool_timeout:g} s"
            raise StoreUnavailableError(reason, detail, self._retry_after) from None
        except _GONE as exc:
            raise StoreUnavailableError("unavailable", f"cannot connect: {exc}", self._retry_after) from exc
        finally:
            if self._metrics is not None:
                self._metrics.db_wait.observe(time.perf_counter() - started)
        try:
            return await work(conn)
        except asyncpg.QueryCanceledError as exc:  # statement_timeout, or a cancel from outside
            raise StoreUnavailableError("timeout", "the query was cancelled", self._retry_after) from exc
        except TimeoutError:  # command_timeout: asyncpg has cancelled the query on the server
            detail = f"no answer within {self._settings.query_timeout:g} s"
            raise StoreUnavailableError("timeout", detail, self._retry_after) from None
        except asyncpg.DiskFullError as exc:
            raise StorageFullError("the disk under the PostgreSQL data directory is full") from exc
        except (*_GONE, asyncpg.InternalClientError) as exc:
            _discard_broken(conn)
            raise StoreUnavailableError("unavailable", f"connection lost: {exc}", self._retry_after) from exc
        finally:
            try:
                await pool.release(conn, timeout=self._settings.pool_timeout)
            except (TimeoutError, *_GONE):
                # After a timed-out query release waits for the server to confirm the cancel; a server that does
                # not answer gets the connection terminated by asyncpg, and the pool opens a fresh one on demand.
                pass

    async def _query(self, operation: str, sql: str, run: Callable[[Conn], Awaitable[T]]) -> T:
        async def work() -> T:
            if not self._schema_ready:
                try:
                    await self._ensure_schema()
                except SchemaTooNewError as exc:
                    raise StoreUnavailableError("schema", str(exc), self._retry_after) from exc
            return await self._with_connection(run)

        return await self._telemetry.run(operation, sql, work)

    async def ping(self) -> None:
        """Raise unless the database answers SELECT 1 with the schema in place."""
        await self._query("SELECT", "SELECT 1", lambda conn: conn.fetchval("SELECT 1"))

    async def insert(self, slug: str, url: str) -> LinkRow:
        """Store a new link; the unique constraint, not a prior read, decides a conflict."""
        sql = "INSERT INTO links (slug, url) VALUES ($1, $2) RETURNING id, slug, url, created_at, hits"
        try:
            record: Any = await self._query("INSERT", sql, lambda conn: conn.fetchrow(sql, slug, url))
        except asyncpg.UniqueViolationError:
            raise DuplicateSlugError(slug) from None
        return _row(record)

    async def get(self, slug: str) -> LinkRow | None:
        """The link with this slug, or None."""
        sql = "SELECT id, slug, url, created_at, hits FROM links WHERE slug = $1"
        record = await self._query("SELECT", sql, lambda conn: conn.fetchrow(sql, slug))
        return None if record is None else _row(record)

    async def page(self, after_id: int, limit: int) -> list[LinkRow]:
        """Up to limit links with id > after_id, oldest first (keyset pagination)."""
        sql = "SELECT id, slug, url, created_at, hits FROM links WHERE id > $1 ORDER BY id LIMIT $2"
        records = await self._query("SELECT", sql, lambda conn: conn.fetch(sql, after_id, limit))
        return [_row(r) for r in records]

    async def delete(self, slug: str) -> bool:
        """Delete the link; False if there was none."""
        sql = "DELETE FROM links WHERE slug = $1"
        status = await self._query("DELETE", sql, lambda conn: conn.execute(sql, slug))
        return status != "DELETE 0"

    async def hit(self, slug: str) -> str | None:
        """Count a redirect and return its URL, or None if the slug is unknown."""
        sql = "UPDATE links SET hits = hits + 1 WHERE slug = $1 RETURNING url"
        url = await self._query("UPDATE", sql, lambda conn: conn.fetchval(sql, slug))
        return None if url is None else str(url)
