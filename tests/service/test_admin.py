"""svc/admin.py on its own: the admin listener's app (metrics, liveness, the profile switch) under TestClient."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from svc.admin import create_admin_app
from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.metrics import Metrics
from svc.problems import PROBLEM_JSON

BUILD = BuildInfo(version="1.2.3", commit="abc", commit_time=None, dirty=None)
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def admin() -> Iterator[TestClient[Any]]:
    with TestClient(create_admin_app(Config(), Metrics(BUILD))) as client:
        yield client


def test_metrics_are_the_classic_text_format_by_default(admin: TestClient[Any]) -> None:
    response = admin.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'svc_build_info{commit="abc",version="1.2.3"} 1.0' in response.text


def test_metrics_are_openmetrics_when_the_scraper_asks_for_it(admin: TestClient[Any]) -> None:
    response = admin.get("/metrics", headers={"Accept": OPENMETRICS})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_healthz_answers_ok(admin: TestClient[Any]) -> None:
    response = admin.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_the_profile_is_a_404_problem_unless_profiling_is_enabled(admin: TestClient[Any]) -> None:
    response = admin.get("/debug/profile", params={"seconds": "1"})
    assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM_JSON)
    assert "PROFILING_ENABLED=true" in response.json()["detail"]
