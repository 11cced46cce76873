"""Fixtures shared by the lab tests: svc's real log lines, and the real Elasticsearch node (tests/peers)."""

from __future__ import annotations

import signal

import httpx
import pytest

from harness.service import base_env, service_process
from tests.peers.peer_fixtures import elasticsearch

__all__ = ["elasticsearch", "svc_lines"]


@pytest.fixture(scope="session")
def svc_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """stdout of a real `python -m svc` that served every kind of request the lab sends, then got SIGTERM."""
    env = base_env(tmp_path_factory.mktemp("svc"), FAULTS_ENABLED="true", LOG_LEVEL="debug")
    with service_process(env) as svc:
        with httpx.Client(base_url=svc.url, timeout=10) as client:
            slug = client.post("/links", json={"url": "https://example.com/contract"}).json()["slug"]
            client.get(f"/links/{slug}")
            client.get(f"/r/{slug}")
            client.get("/links", params={"limit": 2})
            client.get("/links/does-not-exist")
            client.get("/no/such/route")
            client.post("/links", json={"url": "not a url"})
            client.post("/links", content=b"{broken", headers={"Content-Type": "application/json"})
            client.get("/slow", params={"ms": 5})
            client.get("/fault", params={"tag": "contract"})
            client.delete(f"/links/{slug}")
        svc.signal(signal.SIGTERM)
        assert svc.wait(20) == 0
        return [line for line in svc.text().splitlines() if line.strip()]
