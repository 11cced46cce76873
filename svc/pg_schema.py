"""PostgreSQL's schema as numbered migrations, applied at start under an advisory lock and recorded in svc_schema."""

from __future__ import annotations

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from svc.store import SchemaTooNewError

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "SCHEMA_VERSION", "migrate"]

# Migration n (1-based) takes the schema from version n-1 to n. Append only: a released migration never changes.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE links (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        slug text NOT NULL,
        url text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        hits bigint NOT NULL DEFAULT 0,
        CONSTRAINT links_slug_key UNIQUE (slug)
    )
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)
# pg_advisory_xact_lock's key: any constant every svc replica agrees on ("svc" in ASCII).
SCHEMA_LOCK = 0x737663


async def migrate(conn: PoolConnectionProxy[asyncpg.Record]) -> int:
    """Bring the schema to SCHEMA_VERSION; replicas starting together queue on the lock. Returns the version found."""
    async with conn.transaction():
        # Transaction-scoped: released by COMMIT or ROLLBACK, so a replica that dies mid-migration frees it.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS svc_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL)"
        )
        found: int = await conn.fetchval("SELECT coalesce(max(version), 0) FROM svc_schema")
        if found > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"the database has schema version {found}; this build knows up to {SCHEMA_VERSION}: "
                "run a newer svc or restore a backup"
            )
        for version in range(found + 1, SCHEMA_VERSION + 1):
            await conn.execute(MIGRATIONS[version - 1])
            await conn.execute("INSERT INTO svc_schema (version, applied_at) VALUES ($1, now())", version)
    return found
