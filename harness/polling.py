"""Polling with a deadline: wait for a condition, never sleep and hope."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "",
    alive: Callable[[], None] | None = None,
) -> T:
    """Call condition until it returns something truthy (returned) or timeout seconds pass (AssertionError).

    alive, when given, runs before each try and raises when the thing polled is gone (a peer process that exited):
    its error ends the wait at once instead of at the deadline.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if alive is not None:
            alive()
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # the condition may fail while the thing it polls is starting
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what or condition}{detail}")
        time.sleep(interval)
