"""The Sentry sink decodes what real SDKs send (envelopes, gzip/brotli, X-Sentry-Auth) and rejects what Sentry would."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import brotli
import httpx
import pytest
import sentry_sdk
from sentry_sdk.utils import event_from_exception

from harness.backends import free_port
from harness.sentry_ingest import SINK_PATH, load_sink
from tests.peers.process import wait_until
from tests.peers.sentry import RunningSink

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
AUTH = "Sentry sentry_key=svc-test-key, sentry_version=7, sentry_client=tests/1.0"


def envelope(*items: tuple[dict[str, Any], bytes], header: dict[str, Any] | None = None) -> bytes:
    lines = [json.dumps(header or {}).encode()]
    for item_header, payload in items:
        lines += [json.dumps(item_header).encode(), payload]
    return b"\n".join(lines) + b"\n"


def event_item(message: str, trace_id: str = TRACE_ID, with_length: bool = False) -> tuple[dict[str, Any], bytes]:
    payload = json.dumps(
        {
            "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
            "level": "error",
            "exception": {"values": [{"type": "RuntimeError", "value": message}]},
            "contexts": {"trace": {"trace_id": trace_id, "span_id": "b7ad6b7169203331"}},
        }
    ).encode()
    header: dict[str, Any] = {"type": "event"}
    if with_length:
        header["length"] = len(payload)
    return header, payload


def post(sink: RunningSink, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(f"{sink.url}/api/{sink.project_id}/envelope/", content=body, headers=headers, timeout=5)


@pytest.mark.parametrize("encoding", ["identity", "gzip", "br"])
def test_sink_decodes_an_envelope_in_each_encoding(sentry_receiver: RunningSink, encoding: str) -> None:
    body = envelope(event_item(f"boom {encoding}"))
    encoded = {"identity": body, "gzip": gzip.compress(body), "br": brotli.compress(body)}[encoding]
    response = post(sentry_receiver, encoded, **{"X-Sentry-Auth": AUTH, "Content-Encoding": encoding})
    assert response.status_code == httpx.codes.OK, response.text
    assert response.json() == {"id": "9ec79c33ec9942ab8353589fcb2e04dc"}
    [event] = sentry_receiver.events()
    assert (event.type, event.title, event.trace_id) == ("event", f"RuntimeError: boom {encoding}", TRACE_ID)


def test_length_prefixed_items_may_contain_newlines(sentry_receiver: RunningSink) -> None:
    attachment = ({"type": "attachment", "length": 11, "filename": "a.txt"}, b"line1\nline2")
    body = envelope(attachment, event_item("after attachment", with_length=True), ({"type": "client_report"}, b"{}"))
    assert post(sentry_receiver, body, **{"X-Sentry-Auth": AUTH}).status_code == httpx.codes.OK
    assert [event.title for event in sentry_receiver.events()] == ["RuntimeError: after attachment"]


def test_trace_id_falls_back_to_the_envelope_trace_header(sentry_receiver: RunningSink) -> None:
    item = ({"type": "event"}, json.dumps({"message": "no trace context"}).encode())
    post(sentry_receiver, envelope(item, header={"trace": {"trace_id": TRACE_ID}}), **{"X-Sentry-Auth": AUTH})
    [event] = sentry_receiver.events()
    assert (event.title, event.trace_id) == ("no trace context", TRACE_ID)


def test_the_key_may_come_as_a_query_parameter(sentry_receiver: RunningSink) -> None:
    response = httpx.post(
        f"{sentry_receiver.url}/api/1/envelope/?sentry_key=svc-test-key&sentry_version=7",
        content=envelope(event_item("browser style")),
        timeout=5,
    )
    assert response.status_code == httpx.codes.OK


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, httpx.codes.UNAUTHORIZED),
        ({"X-Sentry-Auth": "Bearer svc-test-key"}, httpx.codes.UNAUTHORIZED),
        ({"X-Sentry-Auth": "Sentry sentry_version=7"}, httpx.codes.UNAUTHORIZED),
        ({"X-Sentry-Auth": "Sentry sentry_key=wrong, sentry_version=7"}, httpx.codes.FORBIDDEN),
    ],
)
def test_bad_auth_is_rejected_and_nothing_is_stored(
    sentry_receiver: RunningSink, headers: dict[str, str], status: int
) -> None:
    assert post(sentry_receiver, envelope(event_item("x")), **headers).status_code == status
    assert sentry_receiver.events() == []


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"not json\n", {}, httpx.codes.BAD_REQUEST),
        (b'{}\n{"type": "event", "length": 999}\n{}', {}, httpx.codes.BAD_REQUEST),
        (b"\x1f\x8b garbage", {"Content-Encoding": "gzip"}, httpx.codes.BAD_REQUEST),
        (b"{}\n", {"Content-Encoding": "zstd"}, httpx.codes.UNSUPPORTED_MEDIA_TYPE),
    ],
)
def test_malformed_envelopes_get_client_errors(
    sentry_receiver: RunningSink, body: bytes, headers: dict[str, str], status: int
) -> None:
    assert post(sentry_receiver, body, **{"X-Sentry-Auth": AUTH, **headers}).status_code == status


def test_brotli_is_refused_with_415_when_the_module_is_absent(
    sentry_receiver: RunningSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lab image may lack brotli; the sink must then say so instead of storing garbage.
    monkeypatch.delitem(load_sink().DECODERS, "br")
    body = brotli.compress(envelope(event_item("br")))
    response = post(sentry_receiver, body, **{"X-Sentry-Auth": AUTH, "Content-Encoding": "br"})
    assert response.status_code == httpx.codes.UNSUPPORTED_MEDIA_TYPE


def test_events_api_lists_newest_first_and_filters_by_trace(sentry_receiver: RunningSink) -> None:
    other_trace = "f" * 32
    for message, trace_id in [("first", TRACE_ID), ("second", other_trace), ("third", TRACE_ID)]:
        post(sentry_receiver, envelope(event_item(message, trace_id)), **{"X-Sentry-Auth": AUTH})
    listed = httpx.get(f"{sentry_receiver.url}/api/events", timeout=5).json()
    assert [event["title"] for event in listed] == [
        "RuntimeError: third",
        "RuntimeError: second",
        "RuntimeError: first",
    ]
    filtered = httpx.get(f"{sentry_receiver.url}/api/events", params={"trace_id": TRACE_ID, "limit": "1"}).json()
    assert [event["title"] for event in filtered] == ["RuntimeError: third"]
    assert filtered[0]["payload"]["contexts"]["trace"]["trace_id"] == TRACE_ID


def test_index_page_and_health(sentry_receiver: RunningSink) -> None:
    post(sentry_receiver, envelope(event_item("<script>alert(1)</script>")), **{"X-Sentry-Auth": AUTH})
    page = httpx.get(f"{sentry_receiver.url}/", timeout=5)
    assert page.headers["content-type"].startswith("text/html")
    assert TRACE_ID in page.text
    assert "&lt;script&gt;" in page.text
    assert "<script>" not in page.text
    assert httpx.get(f"{sentry_receiver.url}/healthz", timeout=5).json() == {"status": "ok", "events": 1}


def test_store_keeps_only_the_latest_events() -> None:
    sink_module = load_sink()
    store = sink_module.EventStore(max_events=2)
    make = sink_module.to_events
    for message in ("a", "b", "c"):
        store.add(make("1", envelope(event_item(message)), 0.0))
    assert [event.title for event in store.list()] == ["RuntimeError: c", "RuntimeError: b"]


@pytest.fixture
def sdk_client(sentry_receiver: RunningSink, request: pytest.FixtureRequest) -> Iterator[sentry_sdk.Client]:
    """A private sentry-sdk client (never the global one) sending to the sink with the requested compression."""
    client = sentry_sdk.Client(
        dsn=sentry_receiver.dsn,
        default_integrations=False,
        auto_enabling_integrations=False,
        _experiments={"transport_compression_algo": request.param},
    )
    yield client
    client.close()


@pytest.mark.parametrize("sdk_client", ["gzip", "br"], indirect=True)
def test_real_sentry_sdk_events_arrive_with_their_trace_id(
    sentry_receiver: RunningSink, sdk_client: sentry_sdk.Client
) -> None:
    scope = sentry_sdk.Scope()
    scope.set_context("trace", {"trace_id": TRACE_ID, "span_id": "b7ad6b7169203331"})
    try:
        raise ValueError("raised in a test")
    except ValueError:
        event, hint = event_from_exception(sys.exc_info(), client_options=sdk_client.options)
    event_id = sdk_client.capture_event(event, hint=hint, scope=scope)
    sdk_client.flush(timeout=5)

    [stored] = wait_until(lambda: sentry_receiver.events(TRACE_ID) or None, 5, "the SDK's event at the sink")
    assert (stored.event_id, stored.title, stored.level) == (event_id, "ValueError: raised in a test", "error")
    assert stored.payload["exception"]["values"][0]["stacktrace"]["frames"]


def test_sink_runs_as_a_script_with_a_healthcheck() -> None:
    port = free_port()
    argv = [sys.executable, str(SINK_PATH), "--host", "127.0.0.1", "--port", str(port), "--key", "k"]
    healthcheck = [sys.executable, str(SINK_PATH), "--healthcheck", "--port", str(port)]
    assert subprocess.run(healthcheck, timeout=10, check=False).returncode == 1  # nothing listening yet
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: subprocess.run(healthcheck, timeout=10, check=False).returncode == 0, 10, "sink healthcheck")
        unauthorized = httpx.post(f"http://127.0.0.1:{port}/api/1/envelope/", content=b"{}\n", timeout=5)
        assert unauthorized.status_code == httpx.codes.UNAUTHORIZED
    finally:
        proc.terminate()  # SIGTERM: the sink exits at once (it is PID 1 in its container)
        assert proc.wait(timeout=5) == 0
