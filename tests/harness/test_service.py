"""harness.service: the service in a thread or as a process, yielded once it listens and answers /readyz."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from harness.service import base_env, log_lines, service_process, service_thread


def test_a_thread_is_yielded_ready_on_the_ports_it_logged(tmp_path: Path) -> None:
    with service_thread(base_env(tmp_path)) as svc:
        assert svc.public[1] != 0
        assert svc.admin[1] != svc.public[1]
        assert httpx.get(f"{svc.url}/readyz", timeout=5).status_code == 200
        assert httpx.get(f"{svc.admin_url}/metrics", timeout=5).status_code == 200
    assert svc.exit_code == 0, "leaving the block stops it cleanly"


def test_a_thread_that_cannot_start_fails_with_its_output(tmp_path: Path) -> None:
    with (
        pytest.raises(AssertionError, match=r"service exited with 2:(.|\n)*PORT"),
        service_thread(base_env(tmp_path, PORT="not-a-port"), timeout=10),
    ):
        pass


def test_a_process_that_cannot_start_fails_with_its_output(tmp_path: Path) -> None:
    with (
        pytest.raises(AssertionError, match=r"service exited with 2:(.|\n)*PORT"),
        service_process(base_env(tmp_path, PORT="not-a-port"), timeout=20),
    ):
        pass


def test_base_env_is_loopback_on_free_ports_with_the_database_in_the_given_dir(tmp_path: Path) -> None:
    env = base_env(tmp_path, SHUTDOWN_TIMEOUT="1")
    assert (env["HOST"], env["PORT"], env["ADMIN_HOST"], env["ADMIN_PORT"]) == ("127.0.0.1", "0", "127.0.0.1", "0")
    assert Path(env["DATABASE_PATH"]).parent == tmp_path
    assert env["SHUTDOWN_TIMEOUT"] == "1"


def test_log_lines_parse_each_non_blank_line_and_refuse_anything_else() -> None:
    assert log_lines('{"a": 1}\n\n{"b": 2}\n') == [{"a": 1}, {"b": 2}]
    with pytest.raises(ValueError, match="Expecting value"):
        log_lines("not json\n")
