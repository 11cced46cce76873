"""PostgreSQL for the benchmark's -pg variants: a throwaway cluster on loopback, seeded with the served link."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence

from harness.peers import find_peer
from harness.postgres import PostgresCluster
from svc.postgres_store import PoolSettings, PostgresStore

__all__ = ["postgres_for"]


async def _seed(url: str, slug: str) -> None:
    # svc's own store creates the schema (as a replica would at start) and the one link every variant serves.
    store = PostgresStore(url, PoolSettings(size=1, pool_timeout=10, query_timeout=10))
    await store.open()
    try:
        await store.insert(slug, "https://example.com/docs")
    finally:
        await store.close()


@contextlib.contextmanager
def postgres_for(needed: bool, slug: str, cpus: Sequence[int]) -> Iterator[str | None]:
    """The URL of a seeded database when needed (else None); the cluster lives for the block."""
    if not needed:
        yield None
        return
    binary = find_peer("postgres")
    if binary is None:
        raise SystemExit("the -pg variants need PostgreSQL: run scripts/install-peers postgres")
    # fsync on: the benchmark prices the durable configuration users run. On the load cores, like the receivers:
    # the server core runs the variant alone.
    cluster = PostgresCluster(binary, fsync=True, cpus=cpus)
    try:
        cluster.start()
        url = cluster.create_database("bench")
        asyncio.run(_seed(url, slug))
        yield url
    finally:
        cluster.close()
