"""The benchmark harness runs end to end for a few seconds and writes a well-formed report (no timing checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .benchrun import SMOKE, run_bench

NUMBERS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_request", "peak_rss_mib", "startup_s")

pytestmark = SMOKE


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    run_bench(
        "bench", "--variants", "a,b", "--rounds", "1", "--duration", "2", "--warmup", "1",
        "--rss-seconds", "3", "--rss-variants", "d-refused", "--quiet-timeout", "0", "--out", str(out),
    )  # fmt: skip
    return out


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def test_the_json_report_has_every_variant_with_its_numbers(report: Path) -> None:
    doc = _load(report / "latest.json")
    assert doc["schema"] == 1
    assert set(doc["variants"]) == {"a", "b"}
    for variant in doc["variants"].values():
        summary = variant["summary"]
        for key in NUMBERS:
            assert isinstance(summary[key], int | float), (key, summary)
            assert summary[key] >= 0, (key, summary)
        assert summary["rps"] > 0
        assert summary["errors"] == 0
        [run] = variant["runs"]
        assert run["requests"] > 0
    assert doc["machine"]["nproc"] >= 1
    assert doc["settings"]["path"] == "/links/bench-link"


def test_svc_really_emitted_its_telemetry_while_measured(report: Path) -> None:
    summary = _load(report / "latest.json")["variants"]["b"]["summary"]
    assert summary["log_lines_per_request"] > 0.9  # one access line per request
    assert summary["spans_received_per_request"] > 0  # spans reached the OTLP receiver


def test_the_markdown_table_has_a_row_per_variant_with_ratios_to_a(report: Path) -> None:
    text = (report / "latest.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    table = rows[:2]
    assert table[0].startswith("| (a) bare Litestar |")
    assert table[1].startswith("| (b) svc, full telemetry |")
    assert "| 100% |" in table[0]
    header = next(line for line in text.splitlines() if line.startswith("| Variant | req/s |"))
    for row in table:
        assert row.count("|") == header.count("|"), row  # one cell per column of the header
    assert "## Targets" in text
    assert "(b) full telemetry >= 60% by duel" in text  # python -m bench duels (b) against (a) by default
    assert "**Control, (a) bare Litestar vs itself:" in text


def test_the_charts_are_pngs(report: Path) -> None:
    for name in ("latest.png", "rss.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_the_rss_check_reports_a_verdict(report: Path) -> None:
    doc = _load(report / "rss.json")
    check = doc["rss"]["d-refused"]
    assert check["requests"] > 0
    assert len(check["samples"]) >= 2
    assert isinstance(check["flat"], bool)
    assert "RSS under sustained load" in (report / "rss.md").read_text()


def test_the_rss_check_reads_the_servers_python_heap_at_both_points(report: Path) -> None:
    check = _load(report / "rss.json")["rss"]["d-refused"]
    for point in ("heap_start", "heap_end"):
        heap = check[point]
        assert heap is not None, point
        assert heap["arenas"] >= 1
        assert 0 < heap["live_mib"] <= heap["arenas_mib"]
    row = next(line for line in (report / "rss.md").read_text().splitlines() if line.startswith("| (d)"))
    assert " -> " in row  # live and arena columns filled in
