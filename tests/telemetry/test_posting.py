"""KeepAlivePoster (svc/posting.py) on its own, against the harness's HTTP/1.1 fake backend on loopback: one reused
connection, one reopen when the server closed it, and every failure to get an answer as PostFailedError."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator

import pytest

from harness.backends import RefusingPort
from harness.http_backend import HttpBackend, Reply
from svc.posting import KeepAlivePoster, PostFailedError

Replies = deque[Reply]


@pytest.fixture
def poster(endpoint: HttpBackend) -> Iterator[KeepAlivePoster]:
    posting = KeepAlivePoster(f"{endpoint.url}/v1/traces?tenant=a", timeout=5.0)
    yield posting
    posting.close()


def test_a_post_sends_the_body_and_headers_to_the_urls_path_and_query(
    endpoint: HttpBackend, poster: KeepAlivePoster
) -> None:
    poster.post(b"payload", {"Content-Type": "application/x-protobuf", "X-Tenant": "acme"})
    [request] = endpoint.requests()
    assert (request.path, request.body) == ("/v1/traces?tenant=a", b"payload")
    assert (request.headers["content-type"], request.headers["x-tenant"]) == ("application/x-protobuf", "acme")


@pytest.mark.parametrize("status", [202, 503], ids=["2xx", "a non-2xx is a reply too, not an error"])
def test_the_reply_carries_status_headers_and_body(replies: Replies, poster: KeepAlivePoster, status: int) -> None:
    replies.append(Reply(status, b"answer", {"X-Answer": "yes"}))
    reply = poster.post(b"x", {})
    assert (reply.status, reply.headers["X-Answer"], reply.body) == (status, "yes", b"answer")


def test_consecutive_posts_reuse_one_connection(endpoint: HttpBackend, poster: KeepAlivePoster) -> None:
    for _ in range(5):
        assert poster.post(b"x", {}).status == 200
    assert endpoint.connections == 1


def test_a_connection_the_server_closed_silently_is_reopened_once_and_the_post_succeeds(
    replies: Replies, endpoint: HttpBackend, poster: KeepAlivePoster
) -> None:
    replies.append(Reply(200, b"", close=True))  # answered, then the socket closes without Connection: close
    assert poster.post(b"first", {}).status == 200
    assert poster.post(b"second", {}).status == 200
    assert [r.body for r in endpoint.requests()] == [b"first", b"second"]
    assert endpoint.connections == 2


def test_an_answer_with_connection_close_drops_the_connection_before_the_next_post(
    replies: Replies, endpoint: HttpBackend, poster: KeepAlivePoster
) -> None:
    replies.append(Reply(200, b"", {"Connection": "close"}, close=True))
    poster.post(b"first", {})
    poster.post(b"second", {})
    assert len(endpoint.requests()) == 2
    assert endpoint.connections == 2


def test_a_refused_connection_is_a_post_failed_error_naming_the_cause() -> None:
    with RefusingPort() as port:
        poster = KeepAlivePoster(f"{port.url}/v1/traces", timeout=5.0)
        with pytest.raises(PostFailedError, match="ConnectionRefusedError"):
            poster.post(b"x", {})


def test_a_server_that_does_not_answer_within_the_calls_timeout_is_a_post_failed_error(endpoint: HttpBackend) -> None:
    endpoint.mode = "hang"
    answer = threading.Timer(3.0, setattr, (endpoint, "mode", "ok"))  # within the default: only the call's limit fails
    answer.start()
    poster = KeepAlivePoster(endpoint.url, timeout=30.0)
    try:
        with pytest.raises(PostFailedError, match="timed out"):
            poster.post(b"x", {}, timeout=0.2)
    finally:
        poster.close()
        answer.cancel()


def test_after_a_failure_the_next_post_opens_a_fresh_connection(endpoint: HttpBackend) -> None:
    endpoint.mode = "hang"
    poster = KeepAlivePoster(endpoint.url, timeout=5.0)
    try:
        with pytest.raises(PostFailedError):
            poster.post(b"lost", {}, timeout=0.2)
        endpoint.mode = "ok"
        assert poster.post(b"next", {}).status == 200
    finally:
        poster.close()
    assert endpoint.connections == 2
