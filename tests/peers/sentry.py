"""The Sentry receiver of the tests: the lab's own deploy/sentry-sink/sink.py, loaded from its file."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

SINK_PATH = Path(__file__).resolve().parents[2] / "deploy" / "sentry-sink" / "sink.py"
MODULE_NAME = "svc_lab_sentry_sink"  # the folder name has a dash, so it cannot be imported as a package


class ReceivedEvent(Protocol):
    """What the sink stored for one event (sink.StoredEvent)."""

    event_id: str
    project_id: str
    type: str
    title: str
    level: str
    trace_id: str | None
    received_at: float
    payload: dict[str, Any]


class SentryReceiver(Protocol):
    """The running sink as the tests use it (sink.SentrySink)."""

    key: str | None
    project_id: int

    @property
    def url(self) -> str: ...

    @property
    def dsn(self) -> str: ...

    def events(self, trace_id: str | None = None) -> list[ReceivedEvent]: ...

    def stop(self) -> None: ...


def load_sink() -> ModuleType:
    """deploy/sentry-sink/sink.py as a module (loaded once; the lab and the tests run the same code)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.spec_from_file_location(MODULE_NAME, SINK_PATH)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {SINK_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module  # dataclasses look their module up while the class body runs
    spec.loader.exec_module(module)
    return module


def start_sink(key: str | None = "public", project_id: int = 1) -> SentryReceiver:
    """A sink on a free loopback port, serving from a daemon thread of this process."""
    sink = load_sink().SentrySink(host="127.0.0.1", port=0, key=key, project_id=project_id)
    return cast(SentryReceiver, sink.start())
