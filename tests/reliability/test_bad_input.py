"""Hostile input, case by case: each gets a 4xx problem+json answer, never a 5xx, a hang or a dropped connection.

Requests are written byte for byte on a socket, so nothing between the test and uvicorn cleans them up.
A few are so malformed that uvicorn's HTTP parser rejects them before svc ever sees a request (a NUL or raw
non-ASCII byte in the request line or a header, an unknown method token, a request line past the parser's
limit): uvicorn answers those itself with a plain-text 400 "Invalid HTTP request received." and closes the
connection. That is acceptable (still a 4xx, and no application code ran) and asserted as such below.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from harness.checkout import REPO
from harness.service import ServiceThread, base_env, service_thread
from svc.main import EXIT_CONFIG, run
from tests.reliability.support import PROBLEM_JSON, RawResponse, http_bytes, raw_request

MAX_BODY = 4096  # set lower than the default (65536) to show the limit is configurable
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceThread]:
    with service_thread(base_env(tmp_path_factory.mktemp("bad-input"), MAX_BODY_BYTES=str(MAX_BODY))) as running:
        yield running


def _send(svc: ServiceThread, data: bytes) -> RawResponse:
    return raw_request(svc.public[1], data)


def assert_problem(response: RawResponse, *statuses: int) -> dict[str, object]:
    assert response.status in statuses, (response.status, response.body[:300])
    assert response.headers.get("content-type") == PROBLEM_JSON, response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert body["status"] == response.status, body
    assert isinstance(body["title"], str), body
    assert body["title"], body
    return body


def assert_rejected_by_uvicorn(response: RawResponse) -> None:
    # uvicorn's own answer to bytes its HTTP parser cannot read as a request (see the module docstring).
    assert response.status == 400, response
    assert response.headers.get("content-type", "").startswith("text/plain"), response.headers
    assert response.body == b"Invalid HTTP request received.", response.body


def post_links(body: bytes, content_type: str | None = "application/json") -> bytes:
    headers = {"content-type": content_type} if content_type is not None else {}
    return http_bytes("POST", b"/links", headers, body)


# --- malformed JSON -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        b'{"url"',  # truncated
        b'{"url": "https://example.com",}',  # trailing comma
        b"{'url': 'https://example.com'}",  # not JSON quotes
        b"",
        b"null",
        b"[]",
        b'"https://example.com"',
        b'{"url": 5}',
        b'{"url": "https://example.com", "owner": "me"}',  # unknown field
        b'{"url": "https://example.com", "slug": 7}',
        b'\xef\xbb\xbf{"url": "https://example.com"}',  # byte order mark
        b'{"url": "https://example.com/\xff"}',  # not UTF-8 inside a string (was a 500)
        b'{"url": "https://example.com/\\ud800"}',  # lone surrogate escape
        b"[" * 2000 + b"]" * 2000,  # deep nesting
        b'{"url": "https://example.com", "url": 1}',  # duplicate key, last one wins and is wrong
    ],
    ids=lambda b: repr(b[:40]),
)
def test_malformed_json_body_gets_400(svc: ServiceThread, body: bytes) -> None:
    assert_problem(_send(svc, post_links(body)), 400)


# --- wrong content type ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_a_body_that_is_not_json_gets_415(svc: ServiceThread, content_type: str | None) -> None:
    assert_problem(_send(svc, post_links(b'{"url": "https://example.com"}', content_type)), 415)


def test_json_declared_in_another_charset_is_still_checked_as_utf8(svc: ServiceThread) -> None:
    body = '{"url": "https://example.com/é"}'.encode("latin-1")
    assert_problem(_send(svc, post_links(body, "application/json; charset=latin-1")), 400)


# --- oversize bodies ------------------------------------------------------------------------------------------
def test_a_body_over_max_body_bytes_gets_413(svc: ServiceThread) -> None:
    body = b'{"url": "https://example.com/' + b"a" * MAX_BODY + b'"}'
    assert_problem(_send(svc, post_links(body)), 413)


def test_a_chunked_body_over_the_limit_gets_413_without_a_length_to_trust(svc: ServiceThread) -> None:
    chunk = b" " * (MAX_BODY + 1)
    data = (
        b"POST /links HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n" % len(chunk) + chunk + b"\r\n0\r\n\r\n"
    )
    assert_problem(_send(svc, data), 413)


def test_a_lying_content_length_cannot_sneak_past_the_limit(svc: ServiceThread) -> None:
    # Claims 10 bytes and sends them; the declared length is what counts against the limit, and it is small.
    assert_problem(_send(svc, post_links(b'{"url": 1}')), 400)
    too_big = b"POST /links HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 99999999\r\n\r\n{}"
    assert_problem(_send(svc, too_big), 413)


def test_a_body_just_under_the_limit_is_accepted(svc: ServiceThread) -> None:
    url = "https://example.com/" + "a" * 2000
    body = b'{"url": "%s"}' % url.encode()
    assert len(body) < MAX_BODY
    response = _send(svc, post_links(body))
    assert response.status == 201, response


# --- overlong slugs and URLs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [b"/links/" + b"a" * 4000, b"/r/" + b"a" * 4000, b"/links/" + b"%41" * 2000])
def test_an_overlong_slug_in_the_path_gets_404(svc: ServiceThread, path: bytes) -> None:
    body = assert_problem(_send(svc, http_bytes("GET", path)), 404)
    assert len(str(body.get("detail", ""))) <= 200, "the problem must not echo an unbounded slug back"


def test_an_overlong_slug_in_the_body_gets_400(svc: ServiceThread) -> None:
    assert_problem(_send(svc, post_links(b'{"url": "https://example.com", "slug": "%s"}' % (b"a" * 3000))), 400)


def test_an_overlong_url_gets_400(svc: ServiceThread) -> None:
    assert_problem(_send(svc, post_links(b'{"url": "https://example.com/%s"}' % (b"a" * 2100))), 400)


def test_an_overlong_query_value_gets_400(svc: ServiceThread) -> None:
    assert_problem(_send(svc, http_bytes("GET", b"/links?limit=" + b"9" * 3000)), 400)
    assert_problem(_send(svc, http_bytes("GET", b"/slow?ms=" + b"9" * 3000)), 400)


def test_a_request_line_past_max_header_bytes_gets_431(svc: ServiceThread) -> None:
    # The edge protocol counts the request line into the head cap (svc/edge.py), before the parser sees it.
    assert_problem(_send(svc, http_bytes("GET", b"/links/" + b"a" * 100_000)), 431)


# --- odd unicode and NUL bytes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        b"/links/ab%00cd",  # NUL, percent-encoded
        b"/links/%C0%AF",  # overlong UTF-8 encoding of "/"
        b"/links/%FF%FE",  # not UTF-8 at all
        b"/links/%E2%80%AEabc",  # right-to-left override
        b"/links/a%E2%80%8Bb%E2%80%8Dc",  # zero-width space and joiner
        b"/links/%F0%9F%92%A9",  # astral plane
        b"/r/%1B%5B31mred",  # ANSI escape
        b"/links/..%2F..%2Fetc%2Fpasswd",  # traversal
        b"/links/%ZZ",  # broken percent-encoding
    ],
)
def test_odd_unicode_and_nul_in_the_path_get_404(svc: ServiceThread, path: bytes) -> None:
    assert_problem(_send(svc, http_bytes("GET", path)), 404)


@pytest.mark.parametrize(
    "target",
    [
        b"/links?limit=%00",
        b"/links?cursor=1%00",
        b"/links?cursor=%FF",
        b"/links?limit=%E2%80%AE5",
        b"/links?limit=1e309",
        b"/links?limit=-1",
        b"/slow?ms=%00",
        b"/slow?ms=NaN",
    ],
)
def test_odd_unicode_and_nul_in_the_query_get_400(svc: ServiceThread, target: bytes) -> None:
    assert_problem(_send(svc, http_bytes("GET", target)), 400)


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/\u0000x",
        "https://example.com/\u202eevil",
        "https://exa\u200bmple.com/",
        "https://\u0435xample.com/",  # Cyrillic e: a homograph host
        "https://example.com/\u2028",
        "https://example.com/\x85",
        "https://example.com/\x1b[31m",
        "https://user@example.com/",  # userinfo: the "bank.example@evil.example" trick
        "http://[",  # urlsplit raised ValueError on this (was a 500)
        "javascript:alert(1)",
        "https://",
    ],
)
def test_odd_unicode_nul_and_tricks_in_the_url_get_400(svc: ServiceThread, url: str) -> None:
    body = json.dumps({"url": url}).encode()
    assert_problem(_send(svc, post_links(body)), 400)


@pytest.mark.parametrize("slug", ["abc\u0000", "ab\u202ec", "abc\n", "ABC", "a" * 33, "ab", "\u0430bc"])
def test_odd_unicode_and_nul_in_the_slug_get_400(svc: ServiceThread, slug: str) -> None:
    body = json.dumps({"url": "https://example.com", "slug": slug}).encode()
    assert_problem(_send(svc, post_links(body)), 400)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /links/ab\x00cd HTTP/1.1\r\nhost: x\r\n\r\n",  # raw NUL in the request line
        "GET /links/\u202eabc HTTP/1.1\r\nhost: x\r\n\r\n".encode(),  # raw non-ASCII in the request line
        b"GET /version HTTP/1.1\r\nhost: x\r\nx-evil: a\x00b\r\n\r\n",  # NUL in a header value
        b"GET /version HTTP/1.1\r\nhost: x\r\nx-evil: a\rb\r\n\r\n",  # bare CR in a header value
        b"FOO /links HTTP/1.1\r\nhost: x\r\n\r\n",  # a method token httptools does not know
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS ClientHello on the plain port
    ],
)
def test_protocol_garbage_is_refused_by_uvicorn_before_the_app(svc: ServiceThread, data: bytes) -> None:
    assert_rejected_by_uvicorn(_send(svc, data))


def test_the_service_still_serves_after_all_of_that(svc: ServiceThread) -> None:
    response = _send(svc, http_bytes("GET", b"/healthz"))
    assert response.status == 200
    response = _send(svc, http_bytes("GET", b"/readyz"))
    assert response.status == 200


# --- bad environment values -----------------------------------------------------------------------------------
BAD_ENV = {
    "PORT": "abc",
    "ADMIN_PORT": "70000",
    "LOG_LEVEL": "loud",
    "LOG_FORMAT": "xml",
    "SHUTDOWN_TIMEOUT": "-1",
    "SHUTDOWN_DRAIN": "nan",
    "MAX_BODY_BYTES": "0",
    "FAULTS_ENABLED": "maybe",
    "HOST": "a b",
    "DATABASE_PATH": "x\ny",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4317",
    "OTEL_TRACES_SAMPLER_ARG": "2",
    "SENTRY_DSN": "https://hunter2-not-a-dsn",
    "OTEL_EXPORTER_OTLP_HEADERS": "authorization Bearer s3cr3t-token",
}
SECRET_VALUES = ("hunter2", "s3cr3t-token")


def test_bad_environment_values_exit_2_with_one_line_per_variable() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["svc"], BAD_ENV.get, out, stderr=err)
    assert code == EXIT_CONFIG == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == len(BAD_ENV), lines
    named = sorted(line.removeprefix("config error: ").split("=", 1)[0] for line in lines)
    assert named == sorted(BAD_ENV), lines
    assert all(line.startswith("config error: ") for line in lines), lines
    for secret in SECRET_VALUES:
        assert secret not in err.getvalue(), "a secret's value was echoed in a config error"
    assert out.getvalue() == "", "nothing may be logged before the configuration is valid"


def test_a_bad_environment_value_exits_2_as_a_process() -> None:
    env = {"PATH": "/usr/bin:/bin", "PORT": "-5", "SHUTDOWN_TIMEOUT": "soon"}
    proc = subprocess.run(
        [sys.executable, "-m", "svc"], env=env, cwd=REPO, capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 2, proc
    assert proc.stderr.splitlines() == [
        "config error: PORT='-5' is not an integer (0-65535)",
        "config error: SHUTDOWN_TIMEOUT='soon' is not a number of seconds (>= 0)",
    ]
    assert proc.stdout == ""


# --- OPTIONS tells the truth ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "methods"),
    [(b"/links", {"GET", "POST", "OPTIONS"}), (b"/links/some-slug", {"GET", "DELETE", "OPTIONS"})],
)
def test_options_lists_every_method_of_a_path_served_by_several_handlers(
    svc: ServiceThread, path: bytes, methods: set[str]
) -> None:
    # Litestar 2.x listed only the first handler's methods here (litestar-org/litestar#4169).
    response = _send(svc, http_bytes("OPTIONS", path))
    assert response.status == 204
    assert {m.strip() for m in response.headers["allow"].split(",")} == methods
