"""bench/duel.py's round policy on its own: a round in which a side served nothing is void and run again."""

from __future__ import annotations

from typing import Any

import pytest

from bench.duel import VOID_ROUND_ATTEMPTS, measured_round


def _round(left: int, right: int) -> dict[str, Any]:
    return {"left": {"requests": left}, "right": {"requests": right}}


def test_a_round_where_a_side_served_nothing_is_run_again() -> None:
    results = iter([_round(0, 900), _round(800, 900)])
    said: list[str] = []
    duel = measured_round(lambda _attempt: next(results), "duel a vs b round 1", said.append)
    assert duel == _round(800, 900)
    assert said == ["duel a vs b round 1: left served no request; void, run again"]


def test_a_side_that_never_serves_fails_the_duel_by_name() -> None:
    attempts: list[int] = []

    def measure(attempt: int) -> dict[str, Any]:
        attempts.append(attempt)
        return _round(700, 0)

    with pytest.raises(RuntimeError, match="duel a vs b round 2: a side served no request"):
        measured_round(measure, "duel a vs b round 2", lambda _line: None)
    assert attempts == list(range(1, VOID_ROUND_ATTEMPTS + 1))
