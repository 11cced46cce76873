"""PostgreSQL failing under a running svc, for real: down at start, lost, hung, exhausted, killed mid-load.

Every case runs the real service against a real `postgres` server on loopback that the test stops, freezes or
kills; the answer must be a 503 problem+json with Retry-After within the configured timeouts, and service must
come back by itself, without a restart.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from harness.polling import wait_for
from harness.postgres import PostgresCluster, hold_table_lock
from harness.service import base_env, service_thread
from tests.peers.binaries import peer
from tests.telemetry.support import scrape

PROBLEM_JSON = "application/problem+json"
URL = "https://example.com/target"
# Small bounds so that each case answers in about a second; the defaults are 2 s and 5 s.
TIMEOUTS = {"DATABASE_POOL_TIMEOUT": "0.5", "DATABASE_QUERY_TIMEOUT": "1"}
# What the HTTP client allows: a request that takes longer than the store's bounds plus slack has hung.
CLIENT_TIMEOUT = 4.0


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own (it gets stopped and killed), fsync on, not yet started."""
    own = PostgresCluster(peer("postgres"), fsync=True)
    try:
        yield own
    finally:
        own.close()


def assert_unavailable(response: httpx.Response) -> dict[str, object]:
    """A 503 problem+json that says when to retry."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert int(response.headers["retry-after"]) >= 1
    body: dict[str, object] = response.json()
    assert body["status"] == 503
    return body


def env_for(tmp_path: Path, cluster: PostgresCluster, **extra: str) -> dict[str, str]:
    return base_env(tmp_path, **{"DATABASE_URL": cluster.url(), **TIMEOUTS, **extra})


def test_postgres_down_at_start_serves_503_until_it_answers_then_200(tmp_path: Path, cluster: PostgresCluster) -> None:
    with service_thread(env_for(tmp_path, cluster), ready=False) as svc, httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        body = assert_unavailable(http.get(f"{svc.url}/readyz"))
        assert "database unavailable" in str(body["detail"])
        assert_unavailable(http.post(f"{svc.url}/links", json={"url": URL, "slug": "early"}))
        assert http.get(f"{svc.url}/healthz").status_code == 200, "alive while the database is not"

        cluster.start()
        wait_for(lambda: http.get(f"{svc.url}/readyz").status_code == 200, 15, what="/readyz 200 once postgres is up")
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "later"}).status_code == 201
    assert svc.exit_code == 0


def test_postgres_lost_while_serving_answers_503_then_resumes_by_itself(
    tmp_path: Path, cluster: PostgresCluster
) -> None:
    cluster.start()
    with service_thread(env_for(tmp_path, cluster)) as svc, httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "before"}).status_code == 201

        cluster.stop()
        assert_unavailable(http.get(f"{svc.url}/links/before"))
        assert_unavailable(http.post(f"{svc.url}/links", json={"url": URL, "slug": "during"}))
        assert_unavailable(http.get(f"{svc.url}/r/before", follow_redirects=False))
        assert_unavailable(http.get(f"{svc.url}/readyz"))

        cluster.start()
        wait_for(lambda: http.get(f"{svc.url}/links/before").status_code == 200, 15, what="reads resume")
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "after"}).status_code == 201
        assert http.get(f"{svc.url}/readyz").status_code == 200
        failures = scrape(svc.admin_url).value("svc_db_failures_total", reason="unavailable")
        assert failures >= 4
        # An outage is not a bug: access lines say 503, nothing says "unhandled" or carries a traceback.
        bugs = [line for line in svc.logs() if line["log.level"] == "error" and line["log.logger"] != "svc.access"]
        assert bugs == []
        warned = [line for line in svc.logs() if line["log.logger"] == "svc.store" and line["log.level"] == "warning"]
        assert warned, "the outage is logged"


def test_frozen_postgres_answers_503_within_the_query_timeout(tmp_path: Path, cluster: PostgresCluster) -> None:
    cluster.start()
    with service_thread(env_for(tmp_path, cluster)) as svc, httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "frozen"}).status_code == 201
        # SIGSTOP: the server keeps its sockets open and answers nothing, like a blackholed network.
        cluster.signal_all(signal.SIGSTOP)
        try:
            body = assert_unavailable(http.get(f"{svc.url}/links/frozen"))
            assert "timeout" in str(body["detail"])
        finally:
            cluster.signal_all(signal.SIGCONT)
        wait_for(lambda: http.get(f"{svc.url}/links/frozen").status_code == 200, 15, what="reads resume")


def test_exhausted_pool_answers_503_and_is_counted(tmp_path: Path, cluster: PostgresCluster) -> None:
    cluster.start()
    env = env_for(tmp_path, cluster, DATABASE_POOL_SIZE="1", DATABASE_QUERY_TIMEOUT="3")
    with service_thread(env) as svc, httpx.Client(timeout=CLIENT_TIMEOUT) as http:
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "busy"}).status_code == 201
        # Another client holds a lock on the table: svc's one connection waits on it, the next request on the pool.
        with hold_table_lock(cluster.url()):
            # This request takes the one connection and waits on the lock.
            blocked = threading.Thread(target=lambda: httpx.get(f"{svc.url}/links/busy", timeout=CLIENT_TIMEOUT))
            blocked.start()
            wait_for(
                lambda: scrape(svc.admin_url).value("db_client_connection_count", state="used") == 1,
                5,
                what="the one connection in use",
            )
            body = assert_unavailable(http.get(f"{svc.url}/links/busy"))
            assert "pool_exhausted" in str(body["detail"])
        blocked.join(15)
        assert scrape(svc.admin_url).value("svc_db_failures_total", reason="pool_exhausted") == 1
        assert http.get(f"{svc.url}/links/busy").status_code == 200


def test_every_acknowledged_write_survives_postgres_killed_mid_load(tmp_path: Path, cluster: PostgresCluster) -> None:
    cluster.start()
    acknowledged: list[str] = []
    answers: dict[int, int] = {}
    stop = threading.Event()
    with service_thread(env_for(tmp_path, cluster)) as svc:

        def write(worker: int) -> None:
            with httpx.Client(timeout=CLIENT_TIMEOUT) as http:
                n = 0
                while not stop.is_set():
                    slug = f"w{worker}-{n}"
                    n += 1
                    try:
                        response = http.post(f"{svc.url}/links", json={"url": URL, "slug": slug})
                    except httpx.HTTPError:
                        continue  # no answer is no acknowledgement
                    answers[response.status_code] = answers.get(response.status_code, 0) + 1
                    if response.status_code == 201:
                        acknowledged.append(slug)

        writers = [threading.Thread(target=write, args=(i,)) for i in range(4)]
        for writer in writers:
            writer.start()
        try:
            wait_for(lambda: len(acknowledged) >= 200, 30, what="200 acknowledged writes")
            cluster.kill()
            wait_for(lambda: answers.get(503, 0) >= 20, 15, what="503s while postgres is dead")
            cluster.start()
            before = len(acknowledged)
            wait_for(lambda: len(acknowledged) >= before + 100, 30, what="writes resuming after the restart")
        finally:
            stop.set()
            for writer in writers:
                writer.join(15)
        # Each answer is an acknowledgement or a 503 to retry, never a 500 (the unhandled error's tail says which).
        bugs = [
            f"{b.get('error.message')}: {b.get('error.stack_trace', '')[-800:]}"
            for b in svc.logs()
            if b["log.logger"] == "svc.app"
        ]
        assert set(answers) <= {201, 503}, (answers, bugs[:1])
        missing = run_sql_missing(cluster, acknowledged)
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged links lost"


def run_sql_missing(cluster: PostgresCluster, slugs: list[str]) -> list[str]:
    """The slugs that are not in the links table (read straight from the database, not through svc)."""

    async def go() -> list[str]:
        conn = await asyncpg.connect(cluster.url())
        try:
            stored = {row[0] for row in await conn.fetch("SELECT slug FROM links")}
        finally:
            await conn.close()
        return [slug for slug in slugs if slug not in stored]

    return asyncio.run(go())
