"""harness.process: a child process's output is collected while it runs; its start is awaited, or fails with it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.process import server_process, start_process, wait_started

PY = sys.executable


def test_output_is_collected_and_wait_gives_the_exit_code(tmp_path: Path) -> None:
    script = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    with server_process([PY, "-c", script], {}, tmp_path) as server:
        assert server.wait(10) == 3
        assert not server.running()
    assert sorted(server.text().split()) == ["err", "out"]


def test_the_environment_is_the_one_given_plus_path(tmp_path: Path) -> None:
    script = "import os; print(sorted(k for k in os.environ if k in ('PATH', 'ONLY', 'HOME')))"
    with server_process([PY, "-c", script], {"ONLY": "1"}, tmp_path) as server:
        server.wait(10)
    assert server.text().strip() == "['ONLY', 'PATH']"


def test_wait_started_returns_what_the_output_says(tmp_path: Path) -> None:
    script = "import time; print('port=4321', flush=True); time.sleep(30)"
    with server_process([PY, "-c", script], {}, tmp_path) as server:
        found = wait_started(
            lambda: int(server.text().split("=")[1]) if "=" in server.text() else None,
            server.running,
            server.text,
            10,
            "the port line",
        )
        assert found == 4321
    assert not server.running(), "still running on the way out: killed"


def test_a_process_that_exits_first_fails_with_its_output(tmp_path: Path) -> None:
    argv = [PY, "-c", "print('bad config'); raise SystemExit(2)"]
    with server_process(argv, {}, tmp_path) as server, pytest.raises(AssertionError, match="port line: bad config"):
        wait_started(lambda: None, server.running, server.final_text, 30, "the port line")


def test_terminate_times_the_exit_after_sigterm(tmp_path: Path) -> None:
    script = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('up', flush=True)\n"
        "time.sleep(30)\n"
    )
    with server_process([PY, "-c", script], {}, tmp_path) as server:
        wait_started(lambda: "up" in server.text() or None, server.running, server.final_text, 10, "up")
        ended = server.terminate(10)
    assert ended.code == 7
    assert ended.seconds is not None


def test_terminate_gives_none_when_the_process_outlives_the_wait(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(30)"
    )
    with server_process([PY, "-c", script], {}, tmp_path) as server:
        wait_started(lambda: "up" in server.text() or None, server.running, server.final_text, 10, "up")
        ended = server.terminate(0.2)
        assert (ended.code, ended.seconds) == (None, None)
        assert server.running()


def test_with_a_log_path_the_child_writes_its_output_to_that_file(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    server = start_process(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], {}, tmp_path, log_path=log
    )
    assert server.wait(10) == 0
    assert server.reader is None, "no reader thread in this process"
    assert sorted(log.read_text().split()) == ["err", "out"]
    assert server.text() == log.read_text()


def test_stop_kills_a_process_that_ignores_sigterm_and_says_so(tmp_path: Path) -> None:
    script = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(30)"
    )
    server = start_process([PY, "-c", script], {}, tmp_path)
    wait_started(lambda: "up" in server.text() or None, server.running, server.final_text, 10, "up")
    seconds, killed = server.stop(0.2)
    assert killed
    assert seconds >= 0.2
    assert not server.running()


def test_stop_of_a_process_that_honours_sigterm_does_not_kill_it(tmp_path: Path) -> None:
    script = "import time; print('up', flush=True); time.sleep(30)"
    server = start_process([PY, "-c", script], {}, tmp_path)
    wait_started(lambda: "up" in server.text() or None, server.running, server.final_text, 10, "up")
    _, killed = server.stop(10)
    assert not killed
    assert server.proc.returncode == -15
