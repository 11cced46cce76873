"""svc's Sentry transport names every loss: rate limits as Sentry sends them, a full queue, a refused connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sentry_sdk.envelope import Envelope

from harness.backends import RefusingPort
from harness.http_backend import HttpBackend, Reply
from svc.sentry_transport import QUEUE_SIZE, EnvelopeTransport
from tests.support.polling import wait_for


class _Ingest(HttpBackend):
    """A running loopback envelope endpoint answering each POST with `status` and `headers` (held until released)."""

    def __init__(self, status: int, headers: dict[str, str], hold: bool = False) -> None:
        super().__init__(lambda _request: Reply(status, {}, headers), "hang" if hold else "ok")
        self.start()
        self.dsn = f"http://key@{self.host}:{self.port}/1"

    @property
    def posts(self) -> int:
        return self.received

    def release(self) -> None:
        self.mode = "ok"  # the held POSTs are answered

    def close(self) -> None:
        self.stop()


@pytest.fixture
def losses() -> list[tuple[int, str]]:
    return []


def _transport(dsn: str, losses: list[tuple[int, str]]) -> EnvelopeTransport:
    return EnvelopeTransport(dsn, "test/1", lambda n, reason: losses.append((n, reason)))


def _event(n: int) -> Envelope:
    envelope = Envelope()
    envelope.add_event({"event_id": f"{n:032x}", "level": "error", "message": "boom"})
    return envelope


def _lost(losses: list[tuple[int, str]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for count, reason in losses:
        totals[reason] = totals.get(reason, 0) + count
    return totals


@pytest.fixture
def limited() -> Iterator[_Ingest]:
    ingest = _Ingest(429, {"Retry-After": "60", "X-Sentry-Rate-Limits": "60:error:organization"})
    yield ingest
    ingest.close()


def test_a_429_with_sentry_rate_limits_drops_the_following_events_unsent_as_rate_limited(
    limited: _Ingest, losses: list[tuple[int, str]]
) -> None:
    transport = _transport(limited.dsn, losses)
    try:
        transport.capture_envelope(_event(0))
        wait_for(lambda: _lost(losses).get("rate_limited") == 1, timeout=5, what="the first event limited")
        for n in range(1, 6):
            transport.capture_envelope(_event(n))
        transport.flush(5)
    finally:
        transport.kill()
    assert _lost(losses) == {"rate_limited": 6}
    assert limited.posts == 1  # the limit was honoured: nothing else was sent while it lasts


def test_events_beyond_the_queue_are_counted_as_queue_full(losses: list[tuple[int, str]]) -> None:
    ingest = _Ingest(200, {}, hold=True)  # the first POST hangs, so the queue only fills
    transport = _transport(ingest.dsn, losses)
    try:
        transport.capture_envelope(_event(0))
        wait_for(lambda: ingest.posts == 1, timeout=5, what="the first POST in flight")
        for n in range(1, QUEUE_SIZE + 11):
            transport.capture_envelope(_event(n))
        assert _lost(losses) == {"queue_full": 10}
        ingest.release()
        transport.flush(10)
        assert ingest.posts == QUEUE_SIZE + 1
    finally:
        transport.kill()
        ingest.close()


def test_a_refused_connection_is_counted_as_network_error(losses: list[tuple[int, str]]) -> None:
    with RefusingPort() as port:
        transport = _transport(f"http://key@{port.host}:{port.port}/1", losses)
        try:
            for n in range(3):
                transport.capture_envelope(_event(n))
            transport.flush(5)
        finally:
            transport.kill()
    assert _lost(losses) == {"network_error": 3}


def test_a_rate_limit_on_another_category_does_not_stop_error_events(losses: list[tuple[int, str]]) -> None:
    ingest = _Ingest(200, {"X-Sentry-Rate-Limits": "60:transaction;session:organization"})
    transport = _transport(ingest.dsn, losses)
    try:
        for n in range(3):
            transport.capture_envelope(_event(n))
        transport.flush(5)
    finally:
        transport.kill()
        ingest.close()
    assert losses == []
    assert ingest.posts == 3


def test_an_envelope_that_cannot_be_serialised_is_counted_and_the_next_one_still_goes_out(
    losses: list[tuple[int, str]],
) -> None:
    ingest = _Ingest(200, {})
    transport = _transport(ingest.dsn, losses)
    try:
        broken = Envelope()
        broken.add_event({"event_id": "0" * 32, "level": "error", "extra": {"bad": object()}})  # not JSON
        transport.capture_envelope(broken)
        transport.capture_envelope(_event(1))
        transport.flush(5)
    finally:
        transport.kill()
        ingest.close()
    assert _lost(losses) == {"send_failed": 1}
    assert ingest.posts == 1
