"""The command line: run()'s exit codes and streams, `svc --help`, `svc openapi`, and the real process boundary."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from harness.checkout import REPO
from harness.service import base_env, log_lines
from svc.buildinfo import read_build_info
from svc.config import SETTINGS, Config
from svc.main import openapi_document, run
from tests.service.test_config import BAD_VALUES, SECRET_ENVS


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(argv, env.get, out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_run_with_a_bad_port_returns_2_with_one_config_error_line_on_stderr_and_nothing_on_stdout() -> None:
    code, out, err = _run(["svc"], {"PORT": "abc"})
    assert code == 2
    assert out == ""
    assert err == "config error: PORT='abc' is not an integer (0-65535)\n"


def test_run_writes_one_config_error_line_per_bad_variable() -> None:
    env = {"PORT": "abc", "ADMIN_PORT": "-5", "LOG_FORMAT": "xml", "SENTRY_DSN": "not-a-dsn"}
    code, out, err = _run(["svc"], env)
    assert code == 2
    assert out == ""
    assert err.splitlines() == [
        "config error: PORT='abc' is not an integer (0-65535)",
        "config error: ADMIN_PORT='-5' is not an integer (0-65535)",
        "config error: LOG_FORMAT='xml' is not one of json|console",
        "config error: SENTRY_DSN=<redacted> is not a Sentry DSN (https://<key>@<host>/<project>)",
    ]
    assert "not-a-dsn" not in err


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_every_variable_in_declaration_order_and_exits_0(flag: str) -> None:
    code, out, err = _run(["svc", flag], {})
    assert code == 0
    assert err == ""
    assert out.startswith("usage: svc")
    table = out.split("\nVARIABLE ", 1)[1].splitlines()[1:]
    assert [line.split()[0] for line in table] == [s.env for s in SETTINGS]


def test_help_works_even_when_the_environment_is_bad() -> None:
    code, out, _ = _run(["svc", "--help"], {"PORT": "abc"})
    assert code == 0
    assert "PORT" in out


def test_unknown_arguments_exit_2_with_a_hint() -> None:
    code, out, err = _run(["svc", "serve", "--now"], {})
    assert code == 2
    assert out == ""
    assert "unknown arguments" in err
    assert "svc --help" in err


def test_openapi_subcommand_prints_the_code_spec() -> None:
    code, out, err = _run(["svc", "openapi"], {})
    assert (code, err) == (0, "")
    assert out.encode() == openapi_document(Config())


def test_run_exits_1_with_a_json_error_line_when_the_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        out = io.StringIO()
        code = run(["svc"], base_env(tmp_path, PORT=str(port)).get, out, stop=threading.Event())
    assert code == 1
    lines = log_lines(out.getvalue())
    assert any(line["log.level"] == "error" and f"127.0.0.1:{port}" in line["message"] for line in lines), lines


def test_run_exits_1_with_json_lines_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    out = io.StringIO()
    code = run(["svc"], base_env(tmp_path, DATABASE_PATH=str(tmp_path)).get, out, stop=threading.Event())
    assert code == 1
    lines = log_lines(out.getvalue())  # every line is JSON, even the startup traceback
    errors = [line for line in lines if line["log.level"] == "error"]
    (cause,) = [line for line in errors if line["message"] == f"cannot open the database (sqlite {tmp_path})"]
    assert cause["error.type"] == "OperationalError"
    assert cause["error.message"] == "unable to open database file"
    assert "sqlite3.connect" in cause["error.stack_trace"]
    assert any(line["message"] == "startup failed" for line in errors), errors


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "svc", *args],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_process_with_a_bad_environment_exits_2_with_config_errors_and_no_traceback() -> None:
    done = _cli([], {"PORT": "abc", "SHUTDOWN_TIMEOUT": "later"})
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "config error: PORT='abc' is not an integer (0-65535)",
        "config error: SHUTDOWN_TIMEOUT='later' is not a number of seconds (>= 0)",
    ]
    assert "Traceback" not in done.stderr


def test_console_script_help_lists_every_variable() -> None:
    script = Path(sys.executable).with_name("svc")
    assert script.exists(), f"console script missing at {script}; is the project installed (uv sync)?"
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=30, env={}, check=False)
    assert done.returncode == 0, done.stderr
    for setting in SETTINGS:
        assert setting.env in done.stdout


def test_version_prints_version_commit_and_dirty_flag() -> None:
    build = read_build_info()
    code, out, err = _run(["svc", "--version"], {"PORT": "abc"})
    assert (code, err) == (0, "")
    assert build.commit is not None, "the tests run from a git checkout"
    dirty = "dirty" if build.dirty else "clean"
    assert out == f"svc {build.version} commit {build.commit[:12]} {dirty}\n"


# Every variable's bad value, the values the Sentry SDK rejects only when a client is made, and the port clash.
PROCESS_CASES: dict[str, tuple[dict[str, str], str]] = {
    **{f"{env}={raw!r}": ({env: raw}, env) for env, (raw, _) in BAD_VALUES.items()},
    "SENTRY_DSN project not a number": ({"SENTRY_DSN": "https://key@sentry.example.com/notanumber"}, "SENTRY_DSN"),
    "SENTRY_DSN project 1x": ({"SENTRY_DSN": "https://key@sentry.example.com/1x"}, "SENTRY_DSN"),
    "SENTRY_DSN port out of range": ({"SENTRY_DSN": "https://key@sentry.example.com:70000/1"}, "SENTRY_DSN"),
    "PORT equals ADMIN_PORT": ({"PORT": "8123", "ADMIN_PORT": "8123"}, "PORT"),
    "PORT equals the default ADMIN_PORT": ({"PORT": "9000", "ADMIN_PORT": ""}, "PORT"),
}


@pytest.mark.parametrize("case", list(PROCESS_CASES))
def test_process_exits_2_with_one_line_naming_the_variable(case: str, tmp_path: Path) -> None:
    env, named = PROCESS_CASES[case]
    done = _cli([], {**base_env(tmp_path), **env})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"config error: {named}="), line
    if named in SECRET_ENVS:
        assert env[named] not in line


def test_the_light_commands_import_no_server_stack() -> None:
    # --help, --version and config errors must answer at once: none of the heavy libraries may be imported for them.
    probe = (
        "import io, sys\n"
        "from svc.cli import answer\n"
        "for argv, env in ((['svc', '--help'], {}), (['svc', '--version'], {}), (['svc'], {'PORT': 'x'})):\n"
        "    answer(argv, env.get, io.StringIO(), io.StringIO())\n"
        "heavy = ('litestar', 'uvicorn', 'opentelemetry', 'sentry_sdk', 'orjson', 'svc.main', 'svc.app')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "[]"
