"""The database's telemetry, the same on both stores: pool metrics, and a failing query's warning with its trace id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import httpx

from harness.otlp_receivers import OtlpGrpcReceiver
from harness.postgres import hold_table_lock
from harness.service import base_env, service_thread
from svc.metrics import DB_FAILURE_REASONS
from tests.telemetry.support import scrape, trace_response

URL = "https://example.com/telemetry"


@contextmanager
def _sqlite_write_lock(path: Path) -> Iterator[None]:
    # WAL readers never wait; a second writer does, up to busy_timeout (DATABASE_QUERY_TIMEOUT).
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def locked_table(store_env: dict[str, str], tmp_path: Path) -> AbstractContextManager[None]:
    """Another client holding the links table so that svc's writes wait past the query timeout."""
    if "DATABASE_URL" in store_env:
        return hold_table_lock(store_env["DATABASE_URL"])
    return _sqlite_write_lock(tmp_path / "svc.db")


def test_pool_metrics_are_exported(store_env: dict[str, str], tmp_path: Path) -> None:
    with service_thread(base_env(tmp_path, **store_env)) as svc:
        assert httpx.post(f"{svc.url}/links", json={"url": URL, "slug": "metrics"}).status_code == 201
        metrics = scrape(svc.admin_url)
    assert metrics.value("db_client_connection_wait_time_seconds_count") >= 1
    assert metrics.value("db_client_connection_count", state="used") == 0, "nothing in flight after the request"
    assert metrics.value("db_client_connection_count", state="idle") >= 1
    assert metrics.value("db_client_connection_max") == (10 if store_env else 1)
    for reason in DB_FAILURE_REASONS:  # every series exists from the start, so rate() sees the first failure
        assert ("svc_db_failures_total", (("reason", reason),)) in metrics.series()


def test_a_query_past_the_timeout_is_a_503_and_a_warning_with_its_trace_id(
    store_env: dict[str, str], tmp_path: Path, otlp: OtlpGrpcReceiver
) -> None:
    env = base_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=otlp.endpoint, DATABASE_QUERY_TIMEOUT="0.3", **store_env)
    with service_thread(env) as svc:
        with locked_table(store_env, tmp_path):
            response = httpx.post(f"{svc.url}/links", json={"url": URL, "slug": "waits"}, timeout=10)
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"]
        trace_id = trace_response(response).trace_id
        assert response.json()["trace_id"] == trace_id
        [warning] = [line for line in svc.logs() if line["log.logger"] == "svc.store" and line["log.level"] != "info"]
        assert scrape(svc.admin_url).value("svc_db_failures_total", reason="timeout") == 1
    assert warning["log.level"] == "warning"
    assert warning["trace.id"] == trace_id
    assert "INSERT links" in warning["message"]
    assert "waits" not in warning["message"], "no values in the line"
    assert URL not in warning["message"]
    [db] = otlp.spans("INSERT links", trace_id=trace_id)
    assert db.status == "ERROR"
    assert db.attributes["error.type"] == "StoreUnavailableError"
