"""Cheap telemetry backends for the benchmark, each in its own process on the load-generator core.

The servers are harness's fake backends, told to keep nothing but counts (the load core is wrk's too):

- OTLP/gRPC receiver: accepts every ExportTraceServiceRequest, counts the spans, keeps none of them.
- Sentry sink: accepts any envelope POST with 200 and counts it, without decoding it.
- Blackhole: accepts TCP connections, reads and discards whatever arrives, never answers.
- Refusing endpoint: a port nothing listens on (connection refused at once), reserved for the run; no process needed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from harness.backends import FakeBackend, RefusingPort, free_port
from harness.http_backend import HttpBackend, HttpRequest, Reply
from harness.otlp_receivers import OtlpGrpcReceiver

__all__ = ["Backends", "running_backends"]

SENTRY_KEY = "benchkey"


def _pin(cpus: Iterable[int]) -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(cpus))


def _adder(counter: Synchronized[int]) -> Callable[[int], None]:
    def add(n: int) -> None:
        with counter.get_lock():
            counter.value += n

    return add


def _otlp(port: int, counter: Synchronized[int]) -> FakeBackend:
    # No 4 MiB cap on a message (the Collector's default): a benchmark's batches may be larger.
    options = [("grpc.max_receive_message_length", -1)]
    return OtlpGrpcReceiver(port=port, keep=False, on_spans=_adder(counter), workers=4, options=options)


def _sentry(port: int, counter: Synchronized[int]) -> FakeBackend:
    add = _adder(counter)

    def accept(_request: HttpRequest) -> Reply:
        add(1)
        return Reply(200, {})

    return HttpBackend(accept, port=port, keep=False)


def _blackhole(port: int, _counter: None) -> FakeBackend:
    return HttpBackend(mode="blackhole", port=port)


Make = Callable[[int, Any], FakeBackend]  # (port, shared counter) -> a backend that counts into it


def _serve(make: Make, port: int, cpus: list[int], counter: Any, ready: Any) -> None:
    """A child process's life: pinned, serving one backend until SIGTERM."""
    _pin(cpus)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with make(port, counter):
        ready.set()
        stop.wait()


@dataclass
class Backends:
    """Where the variants send telemetry, and the counters of what arrived."""

    otlp_port: int
    sentry_port: int
    blackhole_port: int
    refused_port: int
    spans: Synchronized[int]
    envelopes: Synchronized[int]

    def otlp_endpoint(self, mode: str) -> str:
        """The OTLP/gRPC endpoint for mode live|refused|blackhole."""
        return f"http://127.0.0.1:{self._port(mode, self.otlp_port)}"

    def sentry_dsn(self, mode: str) -> str:
        """A Sentry DSN for mode live|refused|blackhole."""
        return f"http://{SENTRY_KEY}@127.0.0.1:{self._port(mode, self.sentry_port)}/1"

    def _port(self, mode: str, live: int) -> int:
        return {"live": live, "refused": self.refused_port, "blackhole": self.blackhole_port}[mode]


@contextlib.contextmanager
def running_backends(cpus: list[int]) -> Iterator[Backends]:
    """Start the receiver, the sink and the blackhole (pinned to cpus); stop them on exit."""
    ctx = multiprocessing.get_context("spawn")
    with RefusingPort() as refused:
        backends = Backends(
            otlp_port=free_port(),
            sentry_port=free_port(),
            blackhole_port=free_port(),
            refused_port=refused.port,
            spans=ctx.Value("q", 0),
            envelopes=ctx.Value("q", 0),
        )
        targets: list[tuple[Make, int, Synchronized[int] | None]] = [
            (_otlp, backends.otlp_port, backends.spans),
            (_sentry, backends.sentry_port, backends.envelopes),
            (_blackhole, backends.blackhole_port, None),
        ]
        processes: list[SpawnProcess] = []
        try:
            for make, port, counter in targets:
                ready = ctx.Event()
                proc = ctx.Process(target=_serve, args=(make, port, cpus, counter, ready), daemon=True)
                proc.start()
                processes.append(proc)
                if not ready.wait(30):
                    raise RuntimeError(f"backend {make.__name__} did not start")
            yield backends
        finally:
            for proc in processes:
                if proc.pid is not None and proc.is_alive():
                    os.kill(proc.pid, signal.SIGTERM)
            for proc in processes:
                proc.join(5)
                if proc.is_alive():
                    proc.kill()
                    proc.join(5)
