"""A sampling CPU profiler for the live process (the talk's pprof), writing speedscope JSON."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from types import FrameType
from typing import Any

__all__ = ["sample_profile"]

# 100 Hz, like pprof: fine enough to see hot handlers, cheap enough to run in production.
INTERVAL = 0.01
MAX_DEPTH = 128

Stack = tuple[tuple[str, str, int], ...]


def _stack(frame: FrameType | None) -> Stack:
    frames: list[tuple[str, str, int]] = []
    while frame is not None and len(frames) < MAX_DEPTH:
        code = frame.f_code
        frames.append((code.co_qualname, code.co_filename, code.co_firstlineno))
        frame = frame.f_back
    frames.reverse()
    return tuple(frames)


def _speedscope(samples: Counter[Stack], seconds: float) -> dict[str, Any]:
    frame_index: dict[tuple[str, str, int], int] = {}
    frames: list[dict[str, Any]] = []
    stacks: list[list[int]] = []
    weights: list[float] = []
    for stack, count in samples.items():
        indexes = []
        for key in stack:
            if key not in frame_index:
                frame_index[key] = len(frames)
                frames.append({"name": key[0], "file": key[1], "line": key[2]})
            indexes.append(frame_index[key])
        stacks.append(indexes)
        weights.append(count * INTERVAL)
    total = sum(weights)
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": f"svc CPU profile ({seconds:g} s)",
        "exporter": "svc",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": "all threads",
                "unit": "seconds",
                "startValue": 0,
                "endValue": total,
                "samples": stacks,
                "weights": weights,
            }
        ],
    }


def sample_profile(seconds: float) -> dict[str, Any]:
    """Sample every other thread's stack for `seconds` (blocking: run it in a worker thread)."""
    me = threading.get_ident()
    samples: Counter[Stack] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for ident, frame in sys._current_frames().items():
            if ident != me:
                samples[_stack(frame)] += 1
        time.sleep(INTERVAL)
    return _speedscope(samples, seconds)
