"""The fake Sentry ingest answers as the lab's sink in mode ok and fails as told otherwise (sentry-sdk, httpx)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping

import httpx
import pytest
import sentry_sdk

from harness.backends import Mode
from harness.sentry_ingest import SentryReceiver

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
EVENT = {"event_id": "9ec79c33ec9942ab8353589fcb2e04dc", "level": "error", "message": "boom"}


def _envelope(event: Mapping[str, object]) -> bytes:
    return b"\n".join([b"{}", json.dumps({"type": "event"}).encode(), json.dumps(event).encode()]) + b"\n"


def _post(sentry: SentryReceiver, key: str, body: bytes, **headers: str) -> httpx.Response:
    auth = {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"}
    return httpx.post(f"{sentry.url}/api/{sentry.project_id}/envelope/", content=body, headers={**auth, **headers})


@pytest.fixture
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver(key="k") as receiver:
        yield receiver


def test_an_sdk_event_is_stored_with_its_trace_and_its_request_recorded(sentry: SentryReceiver) -> None:
    client = sentry_sdk.Client(dsn=sentry.dsn, default_integrations=False, auto_enabling_integrations=False)
    scope = sentry_sdk.Scope()
    scope.set_context("trace", {"trace_id": TRACE_ID, "span_id": "b7ad6b7169203331"})
    client.capture_event({"message": "from the sdk", "level": "error"}, scope=scope)
    client.flush(5)
    client.close(1)
    event = sentry.wait_event(TRACE_ID)
    assert event["message"] == "from the sdk"
    [request] = sentry.requests()
    assert request.path == f"/api/{sentry.project_id}/envelope/"
    assert [e["event_id"] for e in request.events()] == [event["event_id"]]
    assert sentry.events_received() == 1


def test_ok_answers_as_the_sink_with_the_event_id(sentry: SentryReceiver) -> None:
    response = _post(sentry, "k", gzip.compress(_envelope(EVENT)), **{"Content-Encoding": "gzip"})
    assert (response.status_code, response.json()) == (200, {"id": EVENT["event_id"]})
    assert [e["message"] for e in sentry.events()] == ["boom"]


def test_a_wrong_key_is_refused_as_the_sink_does_and_not_recorded(sentry: SentryReceiver) -> None:
    response = _post(sentry, "other", _envelope(EVENT))
    assert response.status_code == 403
    assert (sentry.requests(), sentry.events()) == ([], [])


@pytest.mark.parametrize("mode", ["500", "503"])
def test_failing_modes_answer_that_status_and_store_nothing(mode: Mode) -> None:
    with SentryReceiver(mode, key="k") as failing:
        response = _post(failing, "k", _envelope(EVENT))
        assert (response.status_code, response.json()) == (int(mode), {"detail": "told to fail"})
        assert (failing.received, failing.events()) == (1, [])


def test_events_received_counts_across_an_outage_on_the_same_port(sentry: SentryReceiver) -> None:
    _post(sentry, "k", _envelope(EVENT))
    dsn = sentry.dsn
    sentry.mode = "refuse"
    with pytest.raises(httpx.ConnectError):
        _post(sentry, "k", _envelope(EVENT))
    sentry.mode = "ok"
    assert _post(sentry, "k", _envelope(EVENT)).status_code == 200
    assert (sentry.dsn, sentry.events_received()) == (dsn, 2)
