"""harness.polling: wait_for returns the first truthy answer, retries through errors, and fails at its deadline."""

from __future__ import annotations

import itertools

import pytest

from harness.polling import wait_for


def test_the_first_truthy_answer_is_returned() -> None:
    answers = iter([None, 0, "", "ready", "later"])
    assert wait_for(lambda: next(answers), timeout=5, interval=0) == "ready"


def test_an_exception_while_polling_is_retried() -> None:
    calls = itertools.count()

    def flaky() -> int:
        if next(calls) < 2:
            raise ConnectionRefusedError("not up yet")
        return 7

    assert wait_for(flaky, timeout=5, interval=0) == 7


def test_the_deadline_fails_naming_what_was_awaited_and_the_last_error() -> None:
    def refused() -> None:
        raise ConnectionRefusedError("nobody home")

    with pytest.raises(AssertionError, match=r"timed out after 0\.0 s waiting for the port.*nobody home"):
        wait_for(refused, timeout=0, what="the port")


def test_alive_ends_the_wait_at_once_with_its_own_error() -> None:
    def gone() -> None:
        raise RuntimeError("peer exited with 1")

    with pytest.raises(RuntimeError, match="peer exited with 1"):
        wait_for(lambda: None, timeout=30, alive=gone)
