"""The ladder's arithmetic: steps telescope to each rung's total, bucket rows add up to it, frames find buckets."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from bench.duel_report import base_us
from bench.ladder import LADDER, OTHER, attribute, bucket_of, ladder_rows, render_ladder, thread_bucket
from bench.profile import Recording, Samples


def _entry(key: str, share: float, base_cpu: float) -> dict[str, Any]:
    side = {"cpu_us_per_request": base_cpu}
    return {
        "base": "a",
        "variant": key,
        "label": f"({key})",
        "share": {"median": share, "min": share - 0.01, "max": share + 0.01},
        "base_cpu_us_per_request": base_cpu,
        "cpu_us_per_request": base_cpu / share,
        "rps": 1000.0,
        "log_lines_per_request": 1.0,
        "spans_received_per_request": 0.0,
        "spans_dropped": 0,
        "errors": 0,
        "rounds": [{"left": side, "right": {"cpu_us_per_request": base_cpu / share}}],
    }


SHARES = {"b-middleware": 0.84, "b-notrace": 0.76, "c0": 0.68, "c": 0.62, "b-noexport": 0.55, "b": 0.48}


@pytest.fixture
def duels() -> dict[str, Any]:
    return {
        "base": "a",
        "base_label": "(a) bare",
        "rounds": 1,
        "duration": 1,
        "warmup": 1,
        "connections": 1,
        "control": _entry("a", 1.0, 100.0),
        "duels": {k: _entry(k, v, 100.0) for k, v in SHARES.items()},
    }


def test_the_base_is_converted_at_its_median_cpu_per_request(duels: dict[str, Any]) -> None:
    assert base_us(duels) == 100.0


def test_the_steps_on_each_path_add_up_to_the_rungs_total(duels: dict[str, Any]) -> None:
    ladder = ladder_rows(duels, {})
    steps = {s["rung"]: s for s in ladder["steps"]}
    parents = {key: parent for key, parent, _ in LADDER}
    for rung in ("c", "b"):
        total, key = 0.0, rung
        while key != "a":
            total += steps[key]["step_us"]
            key = parents[key]
        assert total == pytest.approx(steps[rung]["above_bare_us"], abs=0.3)
    assert steps["b"]["above_bare_us"] == pytest.approx(100 / 0.48 - 100, abs=0.1)


def test_each_rungs_bucket_rows_add_up_to_its_measured_total(duels: dict[str, Any]) -> None:
    shares = {k: {"litestar": 0.5, "spans": 0.3, OTHER: 0.2} for k in ["a", *SHARES]}
    ladder = ladder_rows(duels, shares)
    for key, buckets in ladder["buckets"].items():
        expected = 100.0 if key == "a" else 100.0 / SHARES[key]
        assert sum(buckets.values()) == pytest.approx(expected, abs=0.2)


def test_a_frame_belongs_to_its_innermost_known_package() -> None:
    stack = ("run (uvicorn/server.py:1)", "handle (litestar/app.py:2)", "emit (svc/logs.py:3)", "dumps (json.py:4)")
    assert bucket_of(stack) == "access line (svc/logs.py, logging)"
    assert bucket_of(("run (uvicorn/server.py:1)", "handle (litestar/app.py:2)")) == "Litestar, msgspec"
    assert bucket_of(("<module> (foo.py:1)",)) == OTHER


def test_the_main_thread_is_split_by_samples_and_other_threads_charged_their_own_cpu() -> None:
    samples: Samples = Counter(
        {("MainThread", ("x (litestar/app.py:1)",)): 3, ("MainThread", ("y (svc/logs.py:1)",)): 1}
    )
    samples[("sqlite_0", ("_worker (concurrent/futures/thread.py:81)",))] = 50  # waiting on the GIL: ignored
    shares = attribute(Recording(samples, {"MainThread": 0.8, "sqlite_0": 0.1, "grpc_global_tim": 0.1}))
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["Litestar, msgspec"] == pytest.approx(0.6)
    assert shares["access line (svc/logs.py, logging)"] == pytest.approx(0.2)
    assert shares[thread_bucket("sqlite_0")] == pytest.approx(0.1)
    assert shares["gRPC C-core threads"] == pytest.approx(0.1)


def test_the_ladder_table_has_a_measured_row_matching_the_sum(duels: dict[str, Any]) -> None:
    shares = {k: {"Litestar, msgspec": 0.8, OTHER: 0.2} for k in ["a", *SHARES]}
    text = render_ladder(ladder_rows(duels, shares), duels)
    total = next(line for line in text.splitlines() if line.startswith("| total (sum of rows)"))
    measured = next(line for line in text.splitlines() if line.startswith("| measured by duel"))
    sums = [float(cell.replace("**", "")) for cell in total.split("|")[2:-1]]
    assert sums == pytest.approx([float(cell) for cell in measured.split("|")[2:-1]], abs=0.3)
