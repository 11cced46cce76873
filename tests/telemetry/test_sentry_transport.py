"""svc's Sentry transport names every loss: rate limits as Sentry sends them, a full queue, a refused connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sentry_sdk.envelope import Envelope

from harness.backends import Mode, RefusingPort
from harness.http_backend import HttpBackend, Reply
from svc.sentry_transport import QUEUE_SIZE, EnvelopeTransport
from tests.support.polling import wait_for


def _ingest(status: int, headers: dict[str, str], mode: Mode = "ok") -> HttpBackend:
    """A running loopback envelope endpoint answering each POST with `status` and `headers` (held while "hang")."""
    return HttpBackend(lambda _request: Reply(status, {}, headers), mode).start()


def _dsn(ingest: HttpBackend) -> str:
    return f"http://key@{ingest.host}:{ingest.port}/1"


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
def limited() -> Iterator[HttpBackend]:
    with _ingest(429, {"Retry-After": "60", "X-Sentry-Rate-Limits": "60:error:organization"}) as ingest:
        yield ingest


def test_a_429_with_sentry_rate_limits_drops_the_following_events_unsent_as_rate_limited(
    limited: HttpBackend, losses: list[tuple[int, str]]
) -> None:
    transport = _transport(_dsn(limited), losses)
    try:
        transport.capture_envelope(_event(0))
        wait_for(lambda: _lost(losses).get("rate_limited") == 1, timeout=5, what="the first event limited")
        for n in range(1, 6):
            transport.capture_envelope(_event(n))
        transport.flush(5)
    finally:
        transport.kill()
    assert _lost(losses) == {"rate_limited": 6}
    assert limited.received == 1  # the limit was honoured: nothing else was sent while it lasts


def test_events_beyond_the_queue_are_counted_as_queue_full(losses: list[tuple[int, str]]) -> None:
    ingest = _ingest(200, {}, mode="hang")  # the first POST hangs, so the queue only fills
    transport = _transport(_dsn(ingest), losses)
    try:
        transport.capture_envelope(_event(0))
        wait_for(lambda: ingest.received == 1, timeout=5, what="the first POST in flight")
        for n in range(1, QUEUE_SIZE + 11):
            transport.capture_envelope(_event(n))
        assert _lost(losses) == {"queue_full": 10}
        ingest.mode = "ok"
        transport.flush(10)
        assert ingest.received == QUEUE_SIZE + 1
    finally:
        transport.kill()
        ingest.stop()


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
    ingest = _ingest(200, {"X-Sentry-Rate-Limits": "60:transaction;session:organization"})
    transport = _transport(_dsn(ingest), losses)
    try:
        for n in range(3):
            transport.capture_envelope(_event(n))
        transport.flush(5)
    finally:
        transport.kill()
        ingest.stop()
    assert losses == []
    assert ingest.received == 3


def test_an_envelope_that_cannot_be_serialised_is_counted_and_the_next_one_still_goes_out(
    losses: list[tuple[int, str]],
) -> None:
    ingest = _ingest(200, {})
    transport = _transport(_dsn(ingest), losses)
    try:
        broken = Envelope()
        broken.add_event({"event_id": "0" * 32, "level": "error", "extra": {"bad": object()}})  # not JSON
        transport.capture_envelope(broken)
        transport.capture_envelope(_event(1))
        transport.flush(5)
    finally:
        transport.kill()
        ingest.stop()
    assert _lost(losses) == {"send_failed": 1}
    assert ingest.received == 1
