"""Data: every link whose 201 the client received is still there after `kill -9` and a restart.

svc/sqlite_store.py runs SQLite in WAL mode with synchronous=NORMAL: a commit is in the WAL file (the OS page cache)
before the 201 is sent, so it survives the process dying at any instant; only losing the machine's power or
kernel before the OS writes the WAL back can lose the last commits (synchronous=FULL would fsync each one).
"""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from harness.polling import wait_for
from harness.service import base_env, service_process


def test_links_committed_before_kill_9_survive_a_restart(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    confirmed: dict[str, str] = {}  # slug -> url, for every 201 the client saw
    stop = threading.Event()

    with service_process(env) as svc:

        def create(worker: int) -> None:
            with httpx.Client(base_url=svc.url, timeout=5) as client:
                i = 0
                while not stop.is_set():
                    slug, url = f"w{worker}-{i:05d}", f"https://example.com/{worker}/{i}"
                    try:
                        response = client.post("/links", json={"url": url, "slug": slug})
                    except httpx.HTTPError:
                        return  # the process is gone: whatever was in flight was never confirmed
                    if response.status_code == 201:
                        confirmed[slug] = url
                    i += 1

        writers = [threading.Thread(target=create, args=(w,), daemon=True) for w in range(4)]
        for writer in writers:
            writer.start()
        wait_for(lambda: len(confirmed) >= 300, 20, what="300 confirmed links")
        svc.signal(signal.SIGKILL)  # mid-write: requests are in flight on four connections
        assert svc.wait(10) == -signal.SIGKILL
        stop.set()
        for writer in writers:
            writer.join(10)

    # The WAL is still beside the database, uncheckpointed: recovery is SQLite's job at the next open.
    assert Path(f"{env['DATABASE_PATH']}-wal").exists()
    with service_process(env) as restarted, httpx.Client(base_url=restarted.url, timeout=5) as client:
        missing = [slug for slug, url in confirmed.items() if client.get(f"/links/{slug}").json().get("url") != url]
        assert not missing, f"{len(missing)} of {len(confirmed)} confirmed links lost: {missing[:10]}"
        listed = 0
        cursor: str | None = None
        started = time.monotonic()
        while time.monotonic() - started < 30:
            page = client.get("/links", params={"limit": 100, **({"cursor": cursor} if cursor else {})}).json()
            listed += len(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert listed >= len(confirmed)  # plus any whose 201 was lost with the process: committed, never confirmed


def test_the_database_file_is_in_wal_mode(tmp_path: Path) -> None:
    env = base_env(tmp_path)
    with service_process(env) as svc:
        assert httpx.post(f"{svc.url}/links", json={"url": "https://example.com"}).status_code == 201
        svc.signal(signal.SIGTERM)
        assert svc.wait(10) == 0
    with sqlite3.connect(env["DATABASE_PATH"]) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
