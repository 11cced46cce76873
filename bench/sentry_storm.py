"""Where an error storm's Sentry events go: per-event costs and the drain rate of each transport, in one process.

    uv run python -m bench.sentry_storm [--events 1000]

Builds real events (a 20-frame traceback through event_from_exception), then measures on this machine: CPU per
event to serialise and compress the envelope (gzip 9, the SDK's default, vs 1), wall time per POST to a loopback
HTTP/1.1 sink with a fresh connection vs one kept alive, and a burst of `--events` captures through
sentry-sdk's own HttpTransport (queue 100) and through svc's EnvelopeTransport: how many arrive, how many are
counted lost. No timing assertion anywhere; this prints numbers for docs/signals.md.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import sys
import time
from typing import Any, cast

import sentry_sdk
from sentry_sdk.envelope import Envelope
from sentry_sdk.transport import HttpTransport
from sentry_sdk.types import Event
from sentry_sdk.utils import event_from_exception

from harness.http_backend import HttpBackend
from svc.posting import KeepAlivePoster
from svc.sentry_transport import EnvelopeTransport

__all__ = ["main"]


def _sink(nodelay: bool) -> HttpBackend:
    """A loopback HTTP/1.1 envelope sink that counts POSTs (keep-alive, as Sentry's ingestion speaks)."""
    sink = HttpBackend(keep=False)
    # Without it, the body written after the headers waits for the client's delayed ACK: 40 ms a request.
    sink.nodelay = nodelay
    return sink.start()


def _dsn(sink: HttpBackend) -> str:
    return f"http://key@{sink.host}:{sink.port}/1"


def _deep(n: int) -> None:
    if n == 0:
        raise RuntimeError("injected fault for the storm")
    _deep(n - 1)


def _events(client: sentry_sdk.Client, count: int) -> list[dict[str, Any]]:
    try:
        _deep(20)
    except RuntimeError as exc:
        event, _ = event_from_exception(exc, client_options=client.options)
    return [dict(event, event_id=f"{i:032x}") for i in range(count)]


def _per_event_us(work: Any, items: list[Any]) -> float:
    start = time.process_time()
    for item in items:
        work(item)
    return (time.process_time() - start) * 1e6 / len(items)


def _burst(sink: HttpBackend, transport: Any, events: list[dict[str, Any]]) -> tuple[int, float, float]:
    client = sentry_sdk.Client(
        dsn=_dsn(sink), default_integrations=False, auto_enabling_integrations=False, transport=transport
    )
    before = sink.received
    start = time.monotonic()
    for event in events:
        client.capture_event(cast(Event, dict(event)), scope=sentry_sdk.Scope())
    captured = time.monotonic() - start
    client.flush(timeout=30)
    drained = time.monotonic() - start
    client.close(timeout=1)
    return sink.received - before, captured, drained


def main(argv: list[str] | None = None) -> int:
    """Print the per-event costs and each transport's burst result."""
    parser = argparse.ArgumentParser(prog="python -m bench.sentry_storm")
    parser.add_argument("--events", type=int, default=1000)
    args = parser.parse_args(argv)
    for nodelay in (False, True):
        print("--- sink with TCP_NODELAY" if nodelay else "--- sink with Nagle on (a plain stdlib http.server)")
        _run(_sink(nodelay), args.events)
    return 0


def _run(sink: HttpBackend, count: int) -> None:
    plain = sentry_sdk.Client(dsn=_dsn(sink), default_integrations=False, auto_enabling_integrations=False)
    events = _events(plain, count)
    plain.close(timeout=1)
    envelopes = []
    for event in events:
        envelope = Envelope()
        envelope.add_event(cast(Event, event))
        envelopes.append(envelope.serialize())
    print(
        f"envelope: {len(envelopes[0])} bytes, gzip-9 {len(gzip.compress(envelopes[0], 9))}, "
        f"gzip-1 {len(gzip.compress(envelopes[0], 1))}"
    )
    print(
        f"CPU per event: gzip-9 {_per_event_us(lambda b: gzip.compress(b, 9), envelopes):.0f} µs, "
        f"gzip-1 {_per_event_us(lambda b: gzip.compress(b, 1), envelopes):.0f} µs"
    )
    body = gzip.compress(envelopes[0], 1)
    headers = {"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip"}
    sample = envelopes[:200]

    def fresh(_: bytes) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", sink.port, timeout=5)
        connection.request("POST", "/api/1/envelope/", body=body, headers=headers)
        connection.getresponse().read()
        connection.close()

    poster = KeepAlivePoster(f"http://127.0.0.1:{sink.port}/api/1/envelope/", 5)
    for name, post in (("fresh connection", fresh), ("kept alive", lambda _: poster.post(body, headers))):
        start = time.monotonic()
        for item in sample:
            post(item)
        print(f"POST, {name}: {(time.monotonic() - start) * 1e6 / len(sample):.0f} µs wall per event")
    poster.close()
    lost: list[int] = []
    transports: list[tuple[str, Any]] = [
        ("sentry-sdk HttpTransport (queue 100, gzip 9)", HttpTransport),
        (
            "svc EnvelopeTransport (queue 1000, gzip 1)",
            EnvelopeTransport(_dsn(sink), "bench", lambda n, _: lost.append(n)),
        ),
    ]
    for name, transport in transports:
        arrived, captured, drained = _burst(sink, transport, events)
        print(
            f"{name}: {arrived}/{len(events)} arrived; captured in {captured:.2f} s, drained in {drained:.2f} s"
            + (f"; {sum(lost)} counted lost" if lost else "")
        )
    sink.stop()


if __name__ == "__main__":
    sys.exit(main())
