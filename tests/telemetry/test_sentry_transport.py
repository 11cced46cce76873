"""svc's Sentry transport (svc/sentry_transport.py) on its own, against a loopback envelope endpoint: it names
every loss (rate limits as Sentry sends them, a full queue, a refused connection, a rejection, the exit)."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator

import pytest
from sentry_sdk.envelope import Envelope

from harness.backends import RefusingPort
from harness.http_backend import HttpBackend, Reply
from harness.polling import wait_for
from svc.sentry_transport import QUEUE_SIZE, EnvelopeTransport, envelope_endpoint


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


Losses = list[tuple[int, str]]
OpenIngest = Callable[..., _Ingest]
StartTransport = Callable[[str], EnvelopeTransport]


@pytest.fixture
def losses() -> Losses:
    return []


@pytest.fixture
def open_ingest() -> Iterator[OpenIngest]:
    """open_ingest(status, headers, hold=False) -> a running _Ingest, closed after the test."""
    opened: list[_Ingest] = []

    def open_(status: int, headers: dict[str, str], hold: bool = False) -> _Ingest:
        opened.append(_Ingest(status, headers, hold))
        return opened[-1]

    yield open_
    for ingest in opened:
        ingest.close()


@pytest.fixture
def start_transport(open_ingest: OpenIngest, losses: Losses) -> Iterator[StartTransport]:
    """start_transport(dsn) -> an EnvelopeTransport counting its losses into `losses`, killed after the test
    (before any ingest closes: this fixture is set up after open_ingest, so it is torn down first)."""
    started: list[EnvelopeTransport] = []

    def start(dsn: str) -> EnvelopeTransport:
        started.append(EnvelopeTransport(dsn, "test/1", lambda n, reason: losses.append((n, reason))))
        return started[-1]

    yield start
    for transport in started:
        transport.kill()


def _event(n: int) -> Envelope:
    envelope = Envelope()
    envelope.add_event({"event_id": f"{n:032x}", "level": "error", "message": "boom"})
    return envelope


def _send(transport: EnvelopeTransport, count: int, first: int = 0) -> None:
    """Capture `count` error events and wait (5 s at most) until the transport has handled them."""
    for n in range(first, first + count):
        transport.capture_envelope(_event(n))
    transport.flush(5)


def _lost(losses: Losses) -> dict[str, int]:
    totals: dict[str, int] = {}
    for count, reason in losses:
        totals[reason] = totals.get(reason, 0) + count
    return totals


def test_a_429_with_sentry_rate_limits_drops_the_following_events_unsent_as_rate_limited(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    limited = open_ingest(429, {"Retry-After": "60", "X-Sentry-Rate-Limits": "60:error:organization"})
    transport = start_transport(limited.dsn)
    transport.capture_envelope(_event(0))
    wait_for(lambda: _lost(losses).get("rate_limited") == 1, timeout=5, what="the first event limited")
    _send(transport, 5, first=1)
    assert _lost(losses) == {"rate_limited": 6}
    assert limited.posts == 1  # the limit was honoured: nothing else was sent while it lasts


def test_a_429_with_only_retry_after_also_holds_the_following_events(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    limited = open_ingest(429, {"Retry-After": "30"})
    transport = start_transport(limited.dsn)
    _send(transport, 1)
    _send(transport, 2, first=1)
    assert _lost(losses) == {"rate_limited": 3}
    assert limited.posts == 1


def test_events_beyond_the_queue_are_counted_as_queue_full(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    ingest = open_ingest(200, {}, hold=True)  # the first POST hangs, so the queue only fills
    transport = start_transport(ingest.dsn)
    transport.capture_envelope(_event(0))
    wait_for(lambda: ingest.posts == 1, timeout=5, what="the first POST in flight")
    for n in range(1, QUEUE_SIZE + 11):
        transport.capture_envelope(_event(n))
    assert _lost(losses) == {"queue_full": 10}
    ingest.release()
    transport.flush(10)
    assert ingest.posts == QUEUE_SIZE + 1


def test_a_refused_connection_is_counted_as_network_error(start_transport: StartTransport, losses: Losses) -> None:
    with RefusingPort() as port:
        _send(start_transport(f"http://key@{port.host}:{port.port}/1"), 3)
    assert _lost(losses) == {"network_error": 3}


def test_a_5xx_answer_is_counted_as_rejected(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    ingest = open_ingest(503, {})
    _send(start_transport(ingest.dsn), 2)
    assert _lost(losses) == {"rejected": 2}
    assert ingest.posts == 2  # a 5xx without a rate limit holds nothing back


def test_a_rate_limit_on_another_category_does_not_stop_error_events(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    ingest = open_ingest(200, {"X-Sentry-Rate-Limits": "60:transaction;session:organization"})
    _send(start_transport(ingest.dsn), 3)
    assert losses == []
    assert ingest.posts == 3


def test_an_envelope_that_cannot_be_serialised_is_counted_and_the_next_one_still_goes_out(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    ingest = open_ingest(200, {})
    transport = start_transport(ingest.dsn)
    broken = Envelope()
    broken.add_event({"event_id": "0" * 32, "level": "error", "extra": {"bad": object()}})  # not JSON
    transport.capture_envelope(broken)
    _send(transport, 1)
    assert _lost(losses) == {"send_failed": 1}
    assert ingest.posts == 1


def test_events_still_queued_when_killed_are_counted_as_shutdown(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    ingest = open_ingest(200, {}, hold=True)
    transport = start_transport(ingest.dsn)
    transport.capture_envelope(_event(0))
    wait_for(lambda: ingest.posts == 1, timeout=5, what="the first POST in flight")
    for n in range(1, 4):
        transport.capture_envelope(_event(n))
    transport.kill()
    assert _lost(losses) == {"shutdown": 3}


def test_events_captured_after_kill_are_counted_as_queue_full(
    open_ingest: OpenIngest, start_transport: StartTransport, losses: Losses
) -> None:
    transport = start_transport(open_ingest(200, {}).dsn)
    transport.kill()
    transport.capture_envelope(_event(0))
    assert _lost(losses) == {"queue_full": 1}


def test_events_the_client_drops_itself_are_counted_under_its_reason_and_other_categories_are_not(
    start_transport: StartTransport, losses: Losses
) -> None:
    with RefusingPort() as port:
        transport = start_transport(f"http://key@{port.host}:{port.port}/1")
    transport.record_lost_event("before_send", data_category="error", quantity=2)
    transport.record_lost_event("sample_rate", data_category="transaction")
    assert losses == [(2, "before_send")]


def test_an_event_arrives_gzipped_at_the_dsns_envelope_url_with_its_auth(start_transport: StartTransport) -> None:
    with HttpBackend() as endpoint:
        transport = start_transport(f"http://public@{endpoint.host}:{endpoint.port}/7")
        _send(transport, 1)
        [request] = endpoint.requests()
    assert request.path == "/api/7/envelope/"
    assert request.headers["x-sentry-auth"].startswith("Sentry sentry_key=public, sentry_version=7")
    assert request.headers["content-encoding"] == "gzip"
    [item] = Envelope.deserialize(gzip.decompress(request.body)).items
    assert item.get_event() == {"event_id": f"{0:032x}", "level": "error", "message": "boom"}


def test_the_envelope_endpoint_and_auth_header_follow_the_dsn() -> None:
    url, headers = envelope_endpoint("https://public@sentry.example.com:9000/prefix/42", "svc/1.0")
    assert url == "https://sentry.example.com:9000/prefix/api/42/envelope/"
    assert headers["X-Sentry-Auth"] == "Sentry sentry_key=public, sentry_version=7, sentry_client=svc/1.0"
    assert (headers["Content-Type"], headers["Content-Encoding"]) == ("application/x-sentry-envelope", "gzip")
