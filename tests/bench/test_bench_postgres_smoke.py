"""The benchmark's PostgreSQL rows run in the same run as a SQLite row and report real numbers (no timing checks)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.peers.binaries import peer

from .benchrun import SMOKE, run_bench

pytestmark = SMOKE


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    peer("postgres")
    out = tmp_path_factory.mktemp("bench-pg")
    # 3 s: longer than the pool timeout (2 s), so a stalled database shows as errors, not as zero requests.
    run_bench(
        "bench", "--variants", "a,a-pg,b-pg", "--rounds", "1", "--duration", "3", "--warmup", "1",
        "--rss-seconds", "0", "--quiet-timeout", "0", "--out", str(out),
    )  # fmt: skip
    loaded: dict[str, Any] = json.loads((out / "latest.json").read_text())
    loaded["markdown"] = (out / "latest.md").read_text()
    return loaded


def test_postgres_rows_sit_beside_the_sqlite_row_with_numbers(report: dict[str, Any]) -> None:
    assert set(report["variants"]) == {"a", "a-pg", "b-pg"}
    for key in ("a-pg", "b-pg"):
        summary = report["variants"][key]["summary"]
        assert summary["rps"] > 0, key
        assert summary["errors"] == 0, key
    rows = [line for line in report["markdown"].splitlines() if line.startswith("| (")]
    assert rows[1].startswith("| (a) bare Litestar, PostgreSQL |")
    assert rows[2].startswith("| (b) svc, full telemetry, PostgreSQL |")


def test_svc_on_postgres_exported_a_server_span_and_a_database_span_per_request(report: dict[str, Any]) -> None:
    summary = report["variants"]["b-pg"]["summary"]
    assert summary["spans_received_per_request"] > 1.5  # GET /links/{slug}: the server span and SELECT links
    assert summary["log_lines_per_request"] > 0.9
