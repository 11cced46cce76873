"""KeepAlivePoster (svc/posting.py) on its own, against a real HTTP/1.1 endpoint on loopback: one reused
connection, one reopen when the server closed it, and every failure to get an answer as PostFailedError."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from svc.posting import KeepAlivePoster, PostFailedError
from tests.telemetry.loopback import HttpAnswer, ScriptedHttp
from tests.telemetry.receivers import RefusingPort


@pytest.fixture
def endpoint() -> Iterator[ScriptedHttp]:
    with ScriptedHttp() as running:
        yield running


@pytest.fixture
def poster(endpoint: ScriptedHttp) -> Iterator[KeepAlivePoster]:
    posting = KeepAlivePoster(endpoint.url("/v1/traces?tenant=a"), timeout=5.0)
    yield posting
    posting.close()


def test_a_post_sends_the_body_and_headers_to_the_urls_path_and_query(
    endpoint: ScriptedHttp, poster: KeepAlivePoster
) -> None:
    poster.post(b"payload", {"Content-Type": "application/x-protobuf", "X-Tenant": "acme"})
    [request] = endpoint.requests
    assert (request.path, request.body) == ("/v1/traces?tenant=a", b"payload")
    assert (request.headers["content-type"], request.headers["x-tenant"]) == ("application/x-protobuf", "acme")


def test_the_reply_carries_status_headers_and_body(endpoint: ScriptedHttp, poster: KeepAlivePoster) -> None:
    endpoint.script.append(HttpAnswer(202, {"X-Answer": "yes"}, b"accepted"))
    reply = poster.post(b"x", {})
    assert (reply.status, reply.headers["X-Answer"], reply.body) == (202, "yes", b"accepted")


def test_a_non_2xx_answer_is_a_reply_not_an_error(endpoint: ScriptedHttp, poster: KeepAlivePoster) -> None:
    endpoint.script.append(HttpAnswer(503, {"Retry-After": "7"}, b"busy"))
    reply = poster.post(b"x", {})
    assert (reply.status, reply.headers["Retry-After"], reply.body) == (503, "7", b"busy")


def test_consecutive_posts_reuse_one_connection(endpoint: ScriptedHttp, poster: KeepAlivePoster) -> None:
    for _ in range(5):
        assert poster.post(b"x", {}).status == 200
    assert endpoint.connections == 1


def test_a_connection_the_server_closed_silently_is_reopened_once_and_the_post_succeeds(
    endpoint: ScriptedHttp, poster: KeepAlivePoster
) -> None:
    endpoint.script.append(HttpAnswer(close=True))  # answered, then the socket closes without Connection: close
    assert poster.post(b"first", {}).status == 200
    assert poster.post(b"second", {}).status == 200
    assert [r.body for r in endpoint.requests] == [b"first", b"second"]
    assert endpoint.connections == 2


def test_an_answer_with_connection_close_drops_the_connection_before_the_next_post(
    endpoint: ScriptedHttp, poster: KeepAlivePoster
) -> None:
    endpoint.script.append(HttpAnswer(headers={"Connection": "close"}, close=True))
    poster.post(b"first", {})
    poster.post(b"second", {})
    assert len(endpoint.requests) == 2
    assert endpoint.connections == 2


def test_a_refused_connection_is_a_post_failed_error_naming_the_cause() -> None:
    with RefusingPort() as port:
        poster = KeepAlivePoster(f"{port.url}/v1/traces", timeout=5.0)
        with pytest.raises(PostFailedError, match="ConnectionRefusedError"):
            poster.post(b"x", {})


def test_a_server_that_does_not_answer_within_the_calls_timeout_is_a_post_failed_error(endpoint: ScriptedHttp) -> None:
    endpoint.hold()  # the answer comes after HOLD_LIMIT (10 s): within the default, so only the call's limit fails
    poster = KeepAlivePoster(endpoint.url(), timeout=30.0)
    try:
        with pytest.raises(PostFailedError, match="timed out"):
            poster.post(b"x", {}, timeout=0.2)
    finally:
        poster.close()


def test_after_a_failure_the_next_post_opens_a_fresh_connection(endpoint: ScriptedHttp) -> None:
    endpoint.hold()
    poster = KeepAlivePoster(endpoint.url(), timeout=5.0)
    try:
        with pytest.raises(PostFailedError):
            poster.post(b"lost", {}, timeout=0.2)
        endpoint.release()
        assert poster.post(b"next", {}).status == 200
    finally:
        poster.close()
    assert endpoint.connections == 2
