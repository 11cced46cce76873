"""Disk full under the SQLite file, for real: a 2 MiB tmpfs mounted for the test, filled to the last byte.

The file system answers ENOSPC exactly as a full volume does, and SQLite reports SQLITE_FULL. Mounting needs root
(CAP_SYS_ADMIN), which CI has; elsewhere the test skips, under CI=true it fails.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.service import base_env, service_thread
from tests.telemetry.support import scrape

PROBLEM_JSON = "application/problem+json"
URL = "https://example.com/" + "x" * 1500  # big rows: each write needs fresh blocks


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs of this test's own."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if result.returncode != 0:
        reason = f"cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): {result.stderr.decode().strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the file system says ENOSPC; the file to delete to free the space."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        chunk = b"\0" * 65536
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    with contextlib.suppress(OSError):
        (disk / "probe").write_bytes(b"x")
        raise AssertionError("the disk still takes bytes")
    return filler


def test_disk_full_answers_507_keeps_reads_and_recovers_without_a_restart(small_disk: Path) -> None:
    env = base_env(small_disk, DATABASE_PATH=str(small_disk / "svc.db"))
    with service_thread(env) as svc, httpx.Client(timeout=10) as http:
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "kept"}).status_code == 201
        filler = fill(small_disk)

        statuses = [http.post(f"{svc.url}/links", json={"url": URL, "slug": f"full-{i}"}) for i in range(5)]
        assert [r.status_code for r in statuses] == [507] * 5, [r.text for r in statuses]
        full = statuses[0]
        assert full.headers["content-type"] == PROBLEM_JSON
        assert full.json()["status"] == 507
        assert "reads still work" in full.json()["detail"]

        assert http.get(f"{svc.url}/links/kept").status_code == 200, "reads keep working"
        assert http.get(f"{svc.url}/r/kept", follow_redirects=False).status_code == 307, "so do redirects"
        assert http.get(f"{svc.url}/readyz").status_code == 200, "a full disk is not a reason to leave rotation"

        metrics = scrape(svc.admin_url)
        assert metrics.value("svc_db_failures_total", reason="storage_full") == 5 + 1  # the redirect's hit too
        warnings = [line for line in svc.logs() if line["log.logger"] == "svc.store"]
        assert len(warnings) == 1, "one warning line per interval, not one per request"
        assert warnings[0]["log.level"] == "warning"
        assert "storage_full" in warnings[0]["message"]
        assert not [line for line in svc.logs() if line["log.logger"] == "svc.app"], "no 'unhandled' error lines"

        filler.unlink()
        assert http.post(f"{svc.url}/links", json={"url": URL, "slug": "after"}).status_code == 201
        assert http.get(f"{svc.url}/links/after").status_code == 200
