"""The lab's Sentry sink as a peer: deploy/sentry-sink/sink.py itself, served in this process, typed as read."""

from __future__ import annotations

from typing import Any, Protocol, cast

from harness.sentry_ingest import load_sink

__all__ = ["RunningSink", "StoredEvent", "start_sink"]


class StoredEvent(Protocol):
    """What the sink stored for one event (sink.StoredEvent), as far as the tests read it."""

    payload: dict[str, Any]
    event_id: str
    trace_id: str | None
    type: str
    level: str
    title: str


class RunningSink(Protocol):
    """The running sink as the tests use it (sink.SentrySink)."""

    key: str | None
    project_id: int

    @property
    def url(self) -> str: ...

    @property
    def dsn(self) -> str: ...

    def events(self, trace_id: str | None = None) -> list[StoredEvent]: ...

    def stop(self) -> None: ...


def start_sink(key: str | None = "public", project_id: int = 1) -> RunningSink:
    """A sink on a free loopback port, serving from a daemon thread of this process."""
    sink = load_sink().SentrySink(host="127.0.0.1", port=0, key=key, project_id=project_id)
    return cast(RunningSink, sink.start())
