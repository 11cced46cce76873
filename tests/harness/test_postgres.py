"""harness.postgres: a throwaway cluster on loopback only, whose databases take queries, and that leaves no files."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import asyncpg
import pytest

from harness.postgres import PostgresCluster, run_sql
from tests.peers.binaries import peer


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster(peer("postgres"), fsync=False) as cluster:
        cluster.start()
        yield cluster


def test_a_created_database_takes_queries(cluster: PostgresCluster) -> None:
    url = cluster.create_database("harness_probe")
    run_sql(url, "CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)")


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing), None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks the route
        except OSError:
            return None
        address: str = probe.getsockname()[0]
        return None if address.startswith("127.") else address


def test_it_listens_on_loopback_only(cluster: PostgresCluster) -> None:
    address = _outward_address()
    if address is None:
        pytest.skip("no non-loopback address to probe from")
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex((address, cluster.port)) != 0, f"reachable on {address}"
    with socket.create_connection(("127.0.0.1", cluster.port), timeout=5):
        pass


def test_a_killed_server_restarts_on_the_same_port_with_its_committed_data(cluster: PostgresCluster) -> None:
    url = cluster.create_database("harness_kill")
    run_sql(url, "CREATE TABLE kept (x int)", "INSERT INTO kept VALUES (42)")
    cluster.kill()
    assert not cluster.running
    cluster.start()
    assert _fetch_one(url, "SELECT x FROM kept") == 42


def _fetch_one(url: str, query: str) -> object:
    async def go() -> object:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            return await conn.fetchval(query)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_leaving_the_block_stops_it_and_deletes_its_files() -> None:
    with PostgresCluster(peer("postgres"), fsync=False) as cluster:
        cluster.start()
        assert cluster.running
    assert not cluster.root.exists()
    assert not cluster.running
