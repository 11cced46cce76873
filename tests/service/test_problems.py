"""svc/problems.py on its own: every error a handler raises becomes one RFC 9457 problem+json body."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar, get
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.testing import TestClient

from svc.problems import PROBLEM_JSON, handle_http_exception, handle_unexpected_exception


@get("/missing")
async def missing() -> None:
    raise NotFoundException("no link with that slug")


@get("/invalid")
async def invalid() -> None:
    raise ValidationException("bad input", extra=[{"key": "url", "message": "not a URL", "value": "x" * 10_000}])


@get("/busy")
async def busy() -> None:
    raise HTTPException(status_code=503, detail="store unavailable", headers={"Retry-After": "1"})


@get("/odd")
async def odd() -> None:
    raise HTTPException(status_code=499, detail="odd status")


@get("/bug")
async def bug() -> None:
    raise RuntimeError("secret internals: password=hunter2")


@pytest.fixture
def client() -> Iterator[TestClient[Any]]:
    app = Litestar(
        [missing, invalid, busy, odd, bug],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected_exception},
    )
    with TestClient(app) as running:
        yield running


def test_a_raised_http_error_is_a_problem_with_its_status_title_detail_and_path(client: TestClient[Any]) -> None:
    response = client.get("/missing")
    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM_JSON)
    assert response.json() == {
        "title": "Not Found",
        "status": 404,
        "detail": "no link with that slug",
        "instance": "/missing",
    }


def test_a_validation_error_lists_each_field_without_echoing_the_rejected_value(client: TestClient[Any]) -> None:
    response = client.get("/invalid")
    assert response.status_code == 400
    assert response.json()["errors"] == [{"key": "url", "message": "not a URL"}]


def test_the_errors_own_headers_are_kept(client: TestClient[Any]) -> None:
    response = client.get("/busy")
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")


def test_a_status_without_a_standard_phrase_is_titled_error(client: TestClient[Any]) -> None:
    assert client.get("/odd").json()["title"] == "Error"


def test_an_unexpected_exception_is_a_generic_500_that_keeps_its_details_out(client: TestClient[Any]) -> None:
    response = client.get("/bug")
    assert (response.status_code, response.headers["content-type"]) == (500, PROBLEM_JSON)
    assert response.json()["detail"] == "internal error; quote the trace_id when reporting it"
    assert "hunter2" not in response.text
