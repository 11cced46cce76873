"""The README holds: its env table is generated from the config declarations, and its commands run as written."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checkout import REPO
from harness.service import base_env, service_process
from svc.config import markdown_table

START = "<!-- env-table:start -->"
END = "<!-- env-table:end -->"


def test_readme_env_table_equals_the_config_declarations() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme.count(START) == 1, f"README.md needs exactly one {START} marker"
    assert readme.count(END) == 1, f"README.md needs exactly one {END} marker"
    between = readme.split(START, 1)[1].split(END, 1)[0]
    assert between.strip("\n") == markdown_table(), (
        "README.md's env table differs from the Config declarations in svc/config.py; replace the lines between the "
        'markers with the output of: uv run python -c "from svc.config import markdown_table; print(markdown_table())"'
    )


MODULE_TABLE = re.compile(r"## The shape of the code\n(.*?)\n## ", re.DOTALL)


def test_readme_module_table_names_every_module_of_svc() -> None:
    table = MODULE_TABLE.search((REPO / "README.md").read_text(encoding="utf-8"))
    assert table, "README.md needs its '## The shape of the code' section"
    named = set(re.findall(r"`(svc/[a-z_]+\.py)`", table.group(1)))
    modules = {f"svc/{path.name}" for path in (REPO / "svc").glob("*.py") if path.name != "__init__.py"}
    assert modules - named == set(), "modules the README's table leaves out"
    assert named - modules == set(), "modules the README's table names that do not exist"


# --- the README's commands, run as a reader runs them --------------------------------------------------------------
# Two things differ here from a reader's machine, and only they are replaced: the listeners get free ports instead
# of 8000/9000, and `uv run` is the environment the tests already run in (its python and its svc console script).
QUICK_START = re.compile(r"## Quick start\n(.*?)\n## ", re.DOTALL)
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def _readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def _quick_start_blocks() -> list[str]:
    section = QUICK_START.search(_readme())
    assert section, "README.md has no '## Quick start' section"
    return SH_BLOCK.findall(section.group(1))


def _here(command: str, ports: tuple[int, int] = (8000, 9000)) -> str:
    bin_dir = Path(sys.executable).parent
    command = command.replace("localhost:8000", f"127.0.0.1:{ports[0]}").replace(
        "localhost:9000", f"127.0.0.1:{ports[1]}"
    )
    command = command.replace("uv run python", shlex.quote(sys.executable))
    return command.replace("uv run svc", shlex.quote(str(bin_dir / "svc")))


def _sh(command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_quick_start_starts_the_service_with_uv_run_svc() -> None:
    server, _ = _quick_start_blocks()
    assert server.split("#", 1)[0].strip() == "uv run svc"


def test_the_quick_start_commands_work_and_work_twice(tmp_path: Path) -> None:
    assert shutil.which("curl"), "the quick start uses curl"
    _, client = _quick_start_blocks()
    with service_process(base_env(tmp_path)) as svc:
        script = _here(client, (svc.public[1], svc.admin[1]))
        runs = [_sh(script, tmp_path, BROWSER="echo") for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert re.search(r"^HTTP/1\.1 307 ", done.stdout, re.MULTILINE), done.stdout
        assert "traceresponse:" in done.stdout.lower()
        assert "http_server_requests_total{" in done.stdout
        assert f"http://127.0.0.1:{svc.public[1]}/docs" in done.stdout  # what `webbrowser` handed to $BROWSER
    locations = [re.findall(r"^location: (\S+)", done.stdout, re.MULTILINE | re.IGNORECASE) for done in runs]
    assert locations == [["https://litestar.dev"], ["https://litestar.dev"]]


README_COMMANDS = [
    "uv run svc --help",
    "uv run svc --version",
    "PORT=abc uv run svc",
    'uv run python -c "from svc.config import markdown_table; print(markdown_table())"',
    "uv run svc openapi",
]


@pytest.mark.parametrize("command", README_COMMANDS)
def test_the_command_is_in_the_readme_as_written(command: str) -> None:
    assert command in _readme()


def test_help_and_version_answer(tmp_path: Path) -> None:
    helped = _sh(_here("uv run svc --help"), tmp_path)
    assert (helped.returncode, helped.stderr) == (0, "")
    assert "PORT" in helped.stdout
    version = _sh(_here("uv run svc --version"), tmp_path)
    assert version.returncode == 0
    assert re.fullmatch(r"svc \S+ commit \S+ (clean|dirty|dirty-unknown)\n", version.stdout), version.stdout


def test_the_bad_port_example_prints_the_line_the_readme_quotes(tmp_path: Path) -> None:
    done = _sh(_here("PORT=abc uv run svc"), tmp_path)
    assert done.returncode == 2
    quoted = re.search(r"`PORT=abc uv run svc` prints `([^`]+)`", _readme())
    assert quoted, "the README quotes what PORT=abc uv run svc prints"
    assert done.stderr == quoted.group(1) + "\n"


def test_the_env_table_command_prints_the_table(tmp_path: Path) -> None:
    done = _sh(_here(README_COMMANDS[3]), tmp_path, PYTHONPATH=str(REPO))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == markdown_table()


def test_the_openapi_command_prints_the_committed_spec(tmp_path: Path) -> None:
    done = _sh(_here("uv run svc openapi"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (REPO / "openapi.json").read_text(encoding="utf-8")


def test_the_license_file_is_the_mit_license_pyproject_names() -> None:
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License\n")
    assert 'license = "MIT"' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
