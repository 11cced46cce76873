"""svc/lab.py on its own: the lab's /slow and /fault routes, in an app of their own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar import Litestar
from litestar.exceptions import HTTPException
from litestar.testing import TestClient
from litestar.types import Scope

from svc.lab import MAX_SLOW_MS, InjectedFaultError, handle_fault, handle_slow
from svc.problems import handle_http_exception


@pytest.fixture
def raised() -> list[Exception]:
    return []


@pytest.fixture
def client(raised: list[Exception]) -> Iterator[TestClient[Any]]:
    async def seen(exc: Exception, scope: Scope) -> None:
        raised.append(exc)

    app = Litestar(
        [handle_slow(), handle_fault()],
        exception_handlers={HTTPException: handle_http_exception},
        after_exception=[seen],
    )
    with TestClient(app) as running:
        yield running


def test_slow_answers_with_the_delay_it_slept(client: TestClient[Any]) -> None:
    response = client.get("/slow", params={"ms": 5})
    assert (response.status_code, response.json()) == (200, {"slept_ms": 5})


@pytest.mark.parametrize("ms", [-1, MAX_SLOW_MS + 1, "soon"])
def test_slow_refuses_a_delay_outside_zero_to_five_seconds_with_a_400(client: TestClient[Any], ms: int | str) -> None:
    assert client.get("/slow", params={"ms": ms}).status_code == 400


def test_fault_raises_the_injected_fault_with_its_tag(client: TestClient[Any], raised: list[Exception]) -> None:
    assert client.get("/fault", params={"tag": "checkout"}).status_code == 500
    assert [(type(exc), str(exc)) for exc in raised] == [(InjectedFaultError, "injected fault checkout")]


def test_fault_refuses_a_tag_with_other_characters_with_a_400(client: TestClient[Any]) -> None:
    assert client.get("/fault", params={"tag": "a b<c>"}).status_code == 400
