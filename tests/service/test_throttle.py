"""LineThrottle: the first event of a key gets a line, then one per interval, each counting the events it stands for."""

from __future__ import annotations

from svc.throttle import LineThrottle


def test_the_first_event_of_each_key_gets_a_line() -> None:
    lines = LineThrottle(interval=60.0)
    assert lines.admit("a") == 1
    assert lines.admit("b") == 1


def test_events_within_the_interval_get_no_line() -> None:
    lines = LineThrottle(interval=60.0)
    lines.admit("a")
    assert [lines.admit("a") for _ in range(3)] == [0, 0, 0]


def test_the_next_line_after_the_interval_counts_the_events_it_stands_for() -> None:
    now = [0.0]
    lines = LineThrottle(interval=10.0, clock=lambda: now[0])
    assert lines.admit("a") == 1
    now[0] = 5.0
    assert [lines.admit("a"), lines.admit("a")] == [0, 0]
    now[0] = 10.0
    assert lines.admit("a") == 3
    assert lines.admit("a") == 0
