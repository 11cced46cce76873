"""Health, readiness and build info: /healthz, /readyz in every phase, /version and read_build_info."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path

import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

import svc.buildinfo
import svc.health
from harness.checkout import REPO
from harness.polling import wait_for
from svc.buildinfo import BuildInfo, read_build_info, read_git
from svc.config import Config
from svc.health import Lifecycle, Phase
from svc.service import Service, create_app
from svc.sqlite_store import SqliteStore
from tests.service.support import app_client, assert_problem

Client = TestClient[ASGIApp]
KNOWN_BUILD = BuildInfo(version="1.2.3", commit="a" * 40, commit_time="2026-11-25T17:00:00+00:00", dirty=False)
UNKNOWN_BUILD = BuildInfo(version=None, commit=None, commit_time=None, dirty=None)


@contextmanager
def app_with_database(config: Config) -> Iterator[tuple[Client, SqliteStore]]:
    """The public app built around a SqliteStore the test holds, so it can break it."""
    db = SqliteStore(config.database_path)
    service = Service(config.replace(otel_disabled=True), UNKNOWN_BUILD, store=db)
    with app_client(config, service.app) as client:
        yield client, db


def test_readyz_is_200_when_serving_and_the_database_answers(client: Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_returns_503_while_starting(config: Config) -> None:
    with app_client(config, lifespan=False) as client:
        body = assert_problem(client.get("/readyz"), 503)
    assert "starting" in body["detail"]


def test_healthz_is_200_while_starting(config: Config) -> None:
    with app_client(config, lifespan=False) as client:
        assert client.get("/healthz").status_code == 200


def test_readyz_returns_503_while_draining_and_healthz_stays_200(config: Config) -> None:
    lifecycle = Lifecycle()
    with app_client(config, create_app(config, lifecycle=lifecycle)) as client:
        assert client.get("/readyz").status_code == 200
        lifecycle.phase = Phase.DRAINING
        body = assert_problem(client.get("/readyz"), 503)
        assert "draining" in body["detail"]
        assert client.get("/healthz").status_code == 200


def test_readyz_returns_503_when_the_database_is_closed(config: Config) -> None:
    with app_with_database(config) as (client, db):
        assert client.get("/readyz").status_code == 200
        client.blocking_portal.call(db.close)
        body = assert_problem(client.get("/readyz"), 503)
    assert "database" in body["detail"]


def test_readyz_returns_503_within_its_timeout_when_the_database_hangs(
    config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(svc.health, "DB_PING_TIMEOUT", 0.2)
    release = threading.Event()
    with app_with_database(config) as (client, db):
        assert db._executor is not None
        db._executor.submit(release.wait, 10)  # the single database thread is now stuck
        try:
            body = assert_problem(client.get("/readyz", timeout=5), 503)
        finally:
            release.set()
        assert "TimeoutError" in body["detail"]
        wait_for(lambda: client.get("/readyz").status_code == 200, 5, what="/readyz 200 after the database recovers")


def test_readyz_problem_has_no_trace_because_probes_are_not_traced(config: Config) -> None:
    with app_client(config, lifespan=False) as client:
        response = client.get("/readyz")
    assert "traceresponse" not in response.headers


def test_version_reports_the_build_and_uptime(config: Config) -> None:
    lifecycle = Lifecycle()
    with app_client(config, create_app(config, lifecycle=lifecycle, build=KNOWN_BUILD)) as client:
        first = client.get("/version").json()
        second = client.get("/version").json()
    assert set(first) == {"version", "commit", "commit_time", "dirty", "python", "started_at", "uptime_seconds"}
    assert (first["version"], first["commit"], first["commit_time"], first["dirty"]) == (
        "1.2.3",
        "a" * 40,
        "2026-11-25T17:00:00+00:00",
        False,
    )
    assert re.fullmatch(r"3\.\d+\.\d+.*", first["python"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["started_at"])
    started = datetime.fromisoformat(first["started_at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - started) < timedelta(minutes=1)
    assert isinstance(first["uptime_seconds"], float | int)
    assert 0 <= first["uptime_seconds"] <= second["uptime_seconds"]


def test_version_answers_null_for_everything_unknown(config: Config) -> None:
    with app_client(config, create_app(config, build=UNKNOWN_BUILD)) as client:
        response = client.get("/version")
    assert response.status_code == 200
    body = response.json()
    assert {k: body[k] for k in ("version", "commit", "commit_time", "dirty")} == dict.fromkeys(
        ("version", "commit", "commit_time", "dirty")
    )


# read_build_info: the stamp, else git, else nulls; never an exception.


def test_build_info_comes_from_the_stamp_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = tmp_path / "_build_info.json"
    stamp.write_text(json.dumps({"commit": "b" * 40, "commit_time": "2026-01-02T03:04:05+00:00", "dirty": True}))
    monkeypatch.setattr(svc.buildinfo, "STAMP", stamp)
    info = read_build_info()
    assert (info.commit, info.commit_time, info.dirty) == ("b" * 40, "2026-01-02T03:04:05+00:00", True)
    assert info.version == metadata.version("svc")


@pytest.mark.parametrize(
    "content",
    ["not json", "[1, 2]", "null", json.dumps({"commit": 5, "commit_time": "", "dirty": "yes"})],
)
def test_a_broken_stamp_never_crashes_and_yields_no_bogus_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    stamp = tmp_path / "_build_info.json"
    stamp.write_text(content)
    monkeypatch.setattr(svc.buildinfo, "STAMP", stamp)
    monkeypatch.setattr(svc.buildinfo, "__file__", str(tmp_path / "svc" / "buildinfo.py"))  # no checkout either
    info = read_build_info()
    assert (info.commit, info.commit_time, info.dirty) == (None, None, None)


def test_build_info_comes_from_git_in_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout")
    monkeypatch.setattr(svc.buildinfo, "STAMP", tmp_path / "absent.json")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    info = read_build_info()
    assert info.commit == head.stdout.strip()
    assert info.commit_time is not None
    assert datetime.fromisoformat(info.commit_time)
    assert isinstance(info.dirty, bool)


def test_build_info_is_all_null_without_stamp_or_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc.buildinfo, "STAMP", tmp_path / "absent.json")
    monkeypatch.setattr(svc.buildinfo, "__file__", str(tmp_path / "svc" / "buildinfo.py"))
    info = read_build_info()
    assert (info.commit, info.commit_time, info.dirty) == (None, None, None)
    assert info.python


def test_build_info_version_is_null_when_the_package_is_not_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)  # the module svc.buildinfo reads it from
    monkeypatch.setattr(svc.buildinfo, "STAMP", tmp_path / "absent.json")
    assert read_build_info().version is None


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=True)


def test_read_git_reports_commit_time_and_dirty_flag(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("needs git")
    _git(tmp_path, "init", "-q")
    (tmp_path / "file.txt").write_text("one\n")
    _git(tmp_path, "add", "file.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "one")
    clean = read_git(tmp_path)
    assert re.fullmatch(r"[0-9a-f]{40}", str(clean["commit"]))
    assert clean["dirty"] is False
    assert isinstance(clean["commit_time"], str)
    (tmp_path / "untracked.txt").write_text("ignored\n")
    assert read_git(tmp_path)["dirty"] is False, "untracked files do not make a build dirty"
    (tmp_path / "file.txt").write_text("two\n")
    assert read_git(tmp_path)["dirty"] is True


def test_read_git_outside_a_repository_is_all_null(tmp_path: Path) -> None:
    assert read_git(tmp_path) == {"commit": None, "commit_time": None, "dirty": None}


def test_read_git_without_git_installed_is_all_null(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert read_git(REPO) == {"commit": None, "commit_time": None, "dirty": None}
