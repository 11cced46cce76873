"""Profiling: /debug/profile on the admin listener returns a speedscope CPU profile, only when enabled."""

from __future__ import annotations

import threading

import httpx

from tests.telemetry.conftest import StartService

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def test_profile_endpoint_returns_speedscope_json_of_the_live_process_when_enabled(
    start_service: StartService, client: httpx.Client
) -> None:
    with start_service(PROFILING_ENABLED="true") as svc:
        # Keep the public listener busy while the profiler watches, so there is work to see.
        busy = threading.Thread(target=lambda: httpx.get(f"{svc.url}/slow?ms=800", timeout=10))
        busy.start()
        response = client.get(f"{svc.admin_url}/debug/profile", params={"seconds": "1"}, timeout=10)
        busy.join(10)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    assert doc["$schema"] == SPEEDSCOPE_SCHEMA
    frames = doc["shared"]["frames"]
    [profile] = doc["profiles"]
    assert profile["type"] == "sampled"
    assert profile["unit"] == "seconds"
    assert len(profile["samples"]) == len(profile["weights"]) > 0
    assert all(0 <= index < len(frames) for stack in profile["samples"] for index in stack)
    assert 0 < profile["endValue"] == sum(profile["weights"])
    assert all({"name", "file", "line"} <= frame.keys() for frame in frames)
    # The process's own threads are in it: uvicorn's event loop runs svc.main.
    assert any(frame["file"].endswith("svc/main.py") for frame in frames)


def test_profile_endpoint_is_404_when_profiling_is_not_enabled(
    start_service: StartService, client: httpx.Client
) -> None:
    with start_service() as svc:
        response = client.get(f"{svc.admin_url}/debug/profile", params={"seconds": "1"})
        public = client.get(f"{svc.url}/debug/profile", params={"seconds": "1"})

    assert response.status_code == 404
    assert public.status_code == 404  # never on the public listener
