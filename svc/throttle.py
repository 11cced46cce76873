"""One log line per interval and key for a repeating failure, counting the events each line stands for."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["LineThrottle"]


class LineThrottle:
    """Decides which of a stream of same-kind events gets a log line: the first, then one per interval.

    Safe from any thread: the export threads and the request path report the same keys.
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._unlogged: dict[str, dict[str, int]] = {}

    def admit(self, key: str, count: int = 1) -> int:
        """Count `count` events of key; the number of events its line stands for (these included), or 0: no line."""
        return sum(self.admit_parts(key, "", count).values())

    def admit_parts(self, key: str, part: str, count: int = 1) -> dict[str, int]:
        """Count `count` events of key, of the kind `part`; the events by part its line stands for, or {}: no line."""
        with self._lock:
            unlogged = self._unlogged.setdefault(key, {})
            unlogged[part] = unlogged.get(part, 0) + count
            now = self._clock()
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                return {}
            self._last[key] = now
            return self._unlogged.pop(key)
