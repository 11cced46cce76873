"""LineThrottle: the first event of a key gets a line, then one per interval, each counting the events it stands for."""

from __future__ import annotations

import itertools
import sys
import threading

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


def test_a_line_counts_the_weight_of_the_events_it_stands_for() -> None:
    now = [0.0]
    lines = LineThrottle(interval=10.0, clock=lambda: now[0])
    assert lines.admit("a", 5) == 5
    assert lines.admit("a", 2) == 0
    now[0] = 10.0
    assert lines.admit("a", 3) == 5


def test_a_line_breaks_its_count_down_by_part() -> None:
    now = [0.0]
    lines = LineThrottle(interval=10.0, clock=lambda: now[0])
    assert lines.admit_parts("spans", "queue_full", 1) == {"queue_full": 1}
    assert lines.admit_parts("spans", "export_failed", 4) == {}
    assert lines.admit_parts("spans", "queue_full", 2) == {}
    now[0] = 10.0
    assert lines.admit_parts("spans", "rejected", 1) == {"export_failed": 4, "queue_full": 2, "rejected": 1}


def test_events_reported_from_many_threads_are_each_counted_in_exactly_one_line() -> None:
    ticks = itertools.count()  # a clock that moves on every reading: lines fall due all the time
    lines = LineThrottle(interval=3.0, clock=lambda: float(next(ticks)))
    counted: list[int] = []
    threads, events = 4, 20_000

    def report() -> None:
        counted.extend(lines.admit("a") for _ in range(events))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, inside admit too
    try:
        workers = [threading.Thread(target=report) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(switch)
    ticks = itertools.count(10**9)  # long after: the next line stands for whatever is still unlogged
    last = lines.admit("a", 0)
    assert sum(counted) + last == threads * events
