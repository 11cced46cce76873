"""One log line per interval and key for a repeating failure, counting the events each line stands for."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["LineThrottle"]


class LineThrottle:
    """Decides which of a stream of same-kind events gets a log line: the first, then one per interval."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def admit(self, key: str) -> int:
        """Count one event of key; the number of events its line stands for (itself included), or 0: no line."""
        self._unlogged[key] = self._unlogged.get(key, 0) + 1
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return 0
        self._last[key] = now
        return self._unlogged.pop(key)
