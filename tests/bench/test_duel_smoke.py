"""The duel runs end to end for a few seconds and writes a well-formed report with its control (no timing checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .benchrun import SMOKE, run_bench

pytestmark = SMOKE


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("duel")
    stdout = run_bench(
        "bench.duel", "b", "--rounds", "2", "--duration", "1", "--warmup", "1", "--connections", "4", "--out", str(out)
    )
    assert "Control, (a) bare Litestar vs itself" in stdout  # printed, not only written
    return out


def _doc(out: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((out / "duel.json").read_text())
    return loaded


def test_the_control_is_the_base_against_itself_every_round(out: Path) -> None:
    control = _doc(out)["control"]
    assert control["base"] == control["variant"] == "a"
    assert len(control["shares"]) == 2
    for duel in control["rounds"]:
        assert duel["left"]["variant"] == duel["right"]["variant"] == "a"
        assert duel["left"]["requests"] > 0
        assert duel["right"]["requests"] > 0
    share = control["share"]
    assert share["min"] <= share["median"] <= share["max"]


def test_each_side_is_charged_its_own_cpu_per_request(out: Path) -> None:
    [duel] = _doc(out)["duels"].values()
    for run in duel["rounds"]:
        left, right = run["left"], run["right"]
        assert (left["variant"], right["variant"]) == ("a", "b")
        for side in (left, right):
            assert side["cpu_seconds"] > 0
            assert side["cpu_us_per_request"] == pytest.approx(side["cpu_seconds"] * 1e6 / side["requests"], rel=0.01)
            assert side["errors"] == 0
        assert run["share"] == pytest.approx(left["cpu_us_per_request"] / right["cpu_us_per_request"], rel=0.01)


def test_the_contender_really_emitted_its_telemetry_while_dueling(out: Path) -> None:
    duel = _doc(out)["duels"]["b"]
    assert duel["log_lines_per_request"] > 0.9  # one access line per request
    assert duel["spans_received_per_request"] > 0  # (a) exports nothing: these spans are (b)'s
    assert duel["spans_dropped"] == 0


def test_the_markdown_has_the_control_row_then_a_row_per_duel_with_its_spread(out: Path) -> None:
    text = (out / "duel.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Variant | share |"))
    rows = [line for line in text.splitlines() if line.startswith("| (")]
    assert rows[0].startswith("| (a) bare Litestar |")
    assert rows[1].startswith("| (b) svc, full telemetry |")
    for row in rows[:2]:
        assert row.count("|") == header.count("|"), row
        assert "%-" in row  # min-max spread of the share
    assert "(b) full telemetry >= 60% by duel" in text
