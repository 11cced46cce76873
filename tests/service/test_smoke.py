"""The real service starts through run(), serves, and stops when asked."""

from __future__ import annotations

from pathlib import Path

import httpx

from harness.service import base_env, service_thread


def test_service_thread_serves_healthz_and_stops_with_exit_code_0(tmp_path: Path) -> None:
    with service_thread(base_env(tmp_path)) as svc:
        assert httpx.get(f"{svc.url}/healthz").json() == {"status": "ok"}
    assert svc.exit_code == 0
