"""/docs in a real browser: headless Chromium renders the served spec with every operation, from local assets only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.checkout import REPO
from harness.polling import wait_for
from harness.service import base_env, service_thread
from tests.peers.binaries import peer
from tests.peers.chromium import chromium_page

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
SCREENSHOT = REPO / "docs" / "swagger-ui.png"

# What Swagger UI shows: its operations, its own error boxes ("Unable to render this definition" is the
# version-pragma box; fetch and parse errors go to the errors wrapper), and the spec's title once it loaded.
RENDERED = """(() => {
  const ops = [...document.querySelectorAll('.opblock')].map(op => [
    op.querySelector('.opblock-summary-method')?.textContent.trim(),
    op.querySelector('.opblock-summary-path')?.getAttribute('data-path'),
  ]);
  const errors = [...document.querySelectorAll('.version-pragma, .errors-wrapper')]
    .map(e => e.textContent.trim()).filter(Boolean);
  const title = document.querySelector('.info .title')?.textContent.trim() ?? null;
  return (ops.length || errors.length) ? {ops, errors, title} : null;
})()"""


def _operations(spec: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in HTTP_METHODS}


@pytest.fixture(scope="module")
def docs_page(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service (with every optional route on) and what Chromium saw when it loaded /docs."""
    binary = peer("chromium")
    env = base_env(tmp_path_factory.mktemp("docs"), FAULTS_ENABLED="true")
    with service_thread(env) as svc, chromium_page(binary) as page:
        spec = httpx.get(f"{svc.url}/docs/openapi.json", timeout=10).json()
        page.send("Page.navigate", url=f"{svc.url}/docs")
        state: dict[str, Any] = wait_for(lambda: page.evaluate(RENDERED), 30, interval=0.2, what="Swagger UI")
        if os.environ.get("SVC_DOCS_SCREENSHOT") == "1":
            # Refreshing the README's picture is on purpose: SVC_DOCS_SCREENSHOT=1 uv run pytest tests/peers/...
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(SCREENSHOT, 1280, 1000)
        return {
            "spec": spec,
            "state": state,
            "origin": svc.url,
            "urls": page.requested_urls(),
            "exceptions": page.exceptions(),
        }


def test_docs_lists_every_operation_of_the_spec(docs_page: dict[str, Any]) -> None:
    expected = _operations(docs_page["spec"])
    assert len(expected) >= 10
    assert {tuple(op) for op in docs_page["state"]["ops"]} == expected


def test_docs_shows_no_render_error_and_the_spec_title(docs_page: dict[str, Any]) -> None:
    assert docs_page["state"]["errors"] == []
    assert docs_page["state"]["title"].startswith(docs_page["spec"]["info"]["title"])
    assert docs_page["exceptions"] == []


def test_docs_loads_nothing_from_outside_the_service(docs_page: dict[str, Any]) -> None:
    urls = docs_page["urls"]
    assert any(url.endswith("/swagger-ui-bundle.js") for url in urls), urls
    outside = [url for url in urls if not url.startswith(docs_page["origin"] + "/") and not url.startswith("data:")]
    assert outside == []


def test_the_readme_screenshot_is_a_png() -> None:
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "docs/swagger-ui.png" in Path(REPO / "README.md").read_text(encoding="utf-8")
