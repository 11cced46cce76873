"""The one link every server under test serves: svc's SQLite file seeded with it, as svc itself leaves the file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from svc.sqlite_store import SCHEMA

__all__ = ["LINK_PATH", "SLUG", "seed_database"]

SLUG = "bench-link"
LINK_PATH = f"/links/{SLUG}"


def seed_database(path: Path) -> None:
    """svc's schema with the link SLUG, in WAL mode as svc leaves it."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO links (slug, url, created_at) VALUES (?, ?, ?)",
            (SLUG, "https://example.com/docs", "2026-11-25T17:00:00.000Z"),
        )
        conn.commit()
    finally:
        conn.close()
