"""Cross-cutting HTTP behaviour in-process: request ids, traceresponse, 404s, the lab's /slow and /fault."""

from __future__ import annotations

import re
import time

import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

from harness.traceresponse import parse_traceresponse
from svc.config import Config
from tests.service.support import app_client, assert_problem

Client = TestClient[ASGIApp]
GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("request_id", ["abc", "req-1.2_3:4", "A" * 64, "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_sane_x_request_id_is_echoed(client: Client, request_id: str) -> None:
    response = client.get("/links", headers={"x-request-id": request_id})
    assert response.headers["x-request-id"] == request_id


@pytest.mark.parametrize(
    "request_id",
    [b"A" * 65, b"has space", b"semi;colon", b'quote"', b"slash/x", b"<script>", b"caf\xc3\xa9", b"tab\tx", b""],
)
def test_insane_x_request_id_is_replaced_by_a_generated_one(client: Client, request_id: bytes) -> None:
    response = client.get("/links", headers={b"x-request-id": request_id})
    assert response.headers["x-request-id"].encode() != request_id
    assert GENERATED_ID.fullmatch(response.headers["x-request-id"])


def test_missing_x_request_id_is_generated_fresh_per_request(client: Client) -> None:
    ids = {client.get("/links").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    assert all(GENERATED_ID.fullmatch(i) for i in ids)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/version", "/nowhere", "/docs"])
def test_every_response_carries_an_x_request_id(client: Client, path: str) -> None:
    assert GENERATED_ID.fullmatch(client.get(path).headers["x-request-id"])


def test_traceresponse_header_has_the_w3c_format(client: Client) -> None:
    response = client.get("/links")
    parsed = parse_traceresponse(response.headers["traceresponse"])
    assert parsed is not None, response.headers["traceresponse"]
    assert parsed.flags in {0, 1}, "svc sets the sampled flag and no other"


def test_each_request_gets_its_own_trace(client: Client) -> None:
    traces = {client.get("/links").headers["traceresponse"].split("-")[1] for _ in range(3)}
    assert len(traces) == 3


def test_problem_trace_id_matches_the_traceresponse_header(client: Client) -> None:
    response = client.get("/links/missing")
    body = assert_problem(response, 404)
    assert body["trace_id"] == response.headers["traceresponse"].split("-")[1]


@pytest.mark.parametrize("path", ["/nowhere", "/links/a/b", "/r/", "/linksx", "/%00"])
def test_unknown_path_returns_404_problem(client: Client, path: str) -> None:
    body = assert_problem(client.get(path), 404)
    assert body["title"] == "Not Found"


def test_fault_is_404_when_faults_are_disabled(client: Client) -> None:
    assert_problem(client.get("/fault"), 404)


def test_fault_returns_500_problem_with_trace_id_and_no_internals_when_enabled(config: Config) -> None:
    with app_client(config.replace(faults_enabled=True)) as client:
        response = client.get("/fault", params={"tag": "boom"})
        body = assert_problem(response, 500)
    assert re.fullmatch(r"[0-9a-f]{32}", body["trace_id"])
    assert body["trace_id"] == response.headers["traceresponse"].split("-")[1]
    assert "boom" not in response.text, "the exception message stays in logs, spans and Sentry"
    assert "Traceback" not in response.text
    assert "InjectedFaultError" not in response.text


def test_fault_with_an_invalid_tag_returns_400_problem(config: Config) -> None:
    with app_client(config.replace(faults_enabled=True)) as client:
        assert_problem(client.get("/fault", params={"tag": "bad tag!"}), 400)


def test_slow_sleeps_the_requested_milliseconds(client: Client) -> None:
    start = time.monotonic()
    response = client.get("/slow", params={"ms": 200})
    elapsed = time.monotonic() - start
    assert response.status_code == 200
    assert response.json() == {"slept_ms": 200}
    assert 0.2 <= elapsed < 3


def test_slow_accepts_zero(client: Client) -> None:
    assert client.get("/slow", params={"ms": 0}).json() == {"slept_ms": 0}


@pytest.mark.parametrize("ms", ["5001", "-1", "abc", "2.5", "99999999999999999999"])
def test_slow_out_of_bounds_returns_400_problem_without_sleeping(client: Client, ms: str) -> None:
    start = time.monotonic()
    assert_problem(client.get("/slow", params={"ms": ms}), 400)
    assert time.monotonic() - start < 1


def test_healthz_answers_ok(client: Client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_responses_do_not_name_the_server_software(client: Client) -> None:
    assert "server" not in client.get("/healthz").headers
