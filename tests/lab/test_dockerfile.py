"""The Dockerfile: multi-stage with a pinned uv and base, non-root, read-only friendly, probed, stamped, secret-free."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from .files import DOCKERFILE, DOCKERIGNORE, REPO, services

SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|DSN|API_KEY|PRIVATE", re.IGNORECASE)


def stages() -> dict[str, list[str]]:
    """Instruction lines (continuations joined, comments dropped) per stage name."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result: dict[str, list[str]] = {"": []}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            match = re.search(r"\bAS\s+(\S+)", line, re.IGNORECASE)
            current = match[1] if match else f"stage{len(result)}"
            result[current] = []
        result[current].append(line)
    return result


def base_image() -> str:
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, "the base image is one ARG with a default"
    return match[1]


def test_build_has_a_builder_and_a_runtime_stage() -> None:
    names = [n for n in stages() if n]
    assert names[:2] == ["builder", "runtime"]
    assert stages()["runtime"][-1].startswith("ENTRYPOINT")


def test_both_stages_use_the_same_pinned_slim_python() -> None:
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base_image())
    froms = [lines[0] for name, lines in stages().items() if name]
    assert all(line.startswith("FROM ${PYTHON_IMAGE}") for line in froms)


def test_lab_python_jobs_use_the_image_base() -> None:
    images = {s["image"] for s in services().values() if str(s.get("image", "")).startswith("python:")}
    assert images == {base_image()}


def test_uv_comes_from_pypi_pinned_to_one_version() -> None:
    builder = " ".join(stages()["builder"])
    assert re.search(r"ARG UV_VERSION=\d+\.\d+\.\d+", builder)
    assert 'pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"' in builder


def test_dependencies_install_from_the_lockfile_without_dev_tools() -> None:
    syncs = [line for line in stages()["builder"] if "uv sync" in line]
    assert syncs
    assert all("--frozen" in line and "--no-dev" in line for line in syncs)
    assert "--no-editable" in syncs[-1], "a real wheel, so the build hook stamps build info"


def test_runtime_stage_runs_as_a_numeric_non_root_user() -> None:
    users = [line.split()[1] for line in stages()["runtime"] if line.startswith("USER ")]
    assert users
    assert int(users[-1].split(":")[0]) > 0


def test_runtime_stage_installs_nothing_and_copies_only_the_venv() -> None:
    runtime = stages()["runtime"]
    assert not any("apt-get" in line or "pip install" in line for line in runtime)
    assert [line for line in runtime if line.startswith("COPY")] == ["COPY --from=builder /opt/venv /opt/venv"]


def test_runtime_writes_nothing_outside_data_so_a_read_only_root_works() -> None:
    runtime = " ".join(stages()["runtime"])
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime
    assert "UV_COMPILE_BYTECODE=1" in " ".join(stages()["builder"])
    assert "DATABASE_PATH=/data/svc.db" in runtime
    assert "install -d -o 10001 -g 10001" in runtime
    assert "/data" in runtime


def test_healthcheck_probes_healthz_with_the_stdlib() -> None:
    checks = [line for line in stages()["runtime"] if line.startswith("HEALTHCHECK")]
    assert len(checks) == 1
    assert "urllib.request.urlopen" in checks[0]
    assert "/healthz" in checks[0]
    assert "curl" not in checks[0]
    assert "wget" not in checks[0]


def test_builder_has_git_and_the_whole_context_for_the_build_stamp() -> None:
    builder = " ".join(stages()["builder"])
    assert "install -y --no-install-recommends git" in builder
    assert "COPY . ." in builder
    assert ".git" not in DOCKERIGNORE.read_text().split()


def test_no_secret_is_baked_into_the_image() -> None:
    lines = [line for stage in stages().values() for line in stage if line.startswith(("ENV", "ARG", "LABEL"))]
    assert [line for line in lines if SECRETISH.search(line)] == []
    assert ".env" in DOCKERIGNORE.read_text().split()


def _ignore_patterns() -> list[str]:
    return [p for p in (line.strip() for line in DOCKERIGNORE.read_text().splitlines()) if p and not p.startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        bare = pattern.rstrip("/").removeprefix("**/")
        parts = path.split("/")
        if any(fnmatch.fnmatchcase("/".join(parts[i : i + bare.count("/") + 1]), bare) for i in range(len(parts))):
            return True
    return False


def test_dockerignore_excludes_no_file_git_would_track() -> None:
    # A tracked file missing from the build context shows as deleted to `git status`: the stamp would say dirty.
    try:
        listed = subprocess.run(
            ["git", "-C", str(REPO), "ls-files", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as err:
        pytest.fail(f"git ls-files failed: {err}")
    assert "Dockerfile" in listed
    patterns = _ignore_patterns()
    assert [path for path in listed if _ignored(path, patterns)] == []


def test_dockerignore_matcher_sees_nested_and_rooted_patterns() -> None:
    patterns = _ignore_patterns()
    assert _ignored("svc/__pycache__/x.pyc", patterns)
    assert _ignored(".venv/bin/python", patterns)
    assert not _ignored("svc/main.py", patterns)


def _builder_env(venv: Path) -> dict[str, str]:
    """The builder stage's ENV, with the venv moved to a temp dir (and bytecode skipped: only speed changes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "VIRTUAL_ENV"))}
    for line in stages()["builder"]:
        if line.startswith("ENV "):
            env.update(dict(pair.split("=", 1) for pair in line[4:].split()))
    env.update(UV_PROJECT_ENVIRONMENT=str(venv), UV_COMPILE_BYTECODE="0")
    return env


def test_builder_commands_stamp_a_clean_clone_with_its_commit(tmp_path: Path) -> None:
    # Runs the Dockerfile's own `uv sync` lines, as written, on a fresh clone (what a CI build context holds).
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    clone = tmp_path / "src"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=60)
    env = _builder_env(tmp_path / "venv")
    commands = [
        cmd.strip()
        for line in stages()["builder"]
        if line.startswith("RUN ") and "uv sync" in line
        for cmd in line[4:].split("&&")
        if cmd.strip().startswith("uv sync")
    ]
    assert len(commands) == 2  # dependencies layer, then the project
    for command in commands:
        subprocess.run(shlex.split(command), cwd=clone, env=env, check=True, timeout=300, capture_output=True)
    stamp = subprocess.run(
        [
            str(tmp_path / "venv" / "bin" / "python"),
            "-I",
            "-c",
            "import json, svc.buildinfo as b; print(json.dumps(json.loads(b.STAMP.read_text())))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
    )
    stamped = json.loads(stamp.stdout)
    assert stamped["commit"] == head.stdout.strip()
    assert stamped["dirty"] is False, "a clean clone must not be stamped dirty"
    assert isinstance(stamped["commit_time"], str)
