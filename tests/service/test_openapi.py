"""The API cannot drift from its documentation: the committed spec, the served spec, and the offline docs UI."""

from __future__ import annotations

import json
import re

import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

from harness.checkout import REPO
from svc.config import Config
from svc.main import openapi_document

Client = TestClient[ASGIApp]
COMMITTED = REPO / "openapi.json"
REGENERATE = "uv run svc openapi > openapi.json"
# Attributes through which a page loads something: every one must point at this service.
ASSET_REF = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


def test_committed_openapi_json_equals_the_spec_the_code_generates() -> None:
    assert COMMITTED.exists(), f"openapi.json is missing; generate it with: {REGENERATE}"
    generated = openapi_document(Config())
    assert COMMITTED.read_bytes() == generated, (
        f"openapi.json differs from the spec the code generates; regenerate it with: {REGENERATE}"
    )


def test_spec_documents_every_public_endpoint() -> None:
    spec = json.loads(openapi_document(Config()))
    operations = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert operations >= {
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/version", "get"),
        ("/links", "post"),
        ("/links", "get"),
        ("/links/{slug}", "get"),
        ("/links/{slug}", "delete"),
        ("/r/{slug}", "get"),
        ("/slow", "get"),
    }


def test_spec_documents_error_responses_as_problem_json() -> None:
    spec = json.loads(openapi_document(Config()))
    create = spec["paths"]["/links"]["post"]["responses"]
    for status in ("400", "409", "413", "415"):
        assert "application/problem+json" in create[status]["content"], status
    assert "application/problem+json" in spec["paths"]["/readyz"]["get"]["responses"]["503"]["content"]


@pytest.mark.parametrize("path", ["/openapi.json", "/docs/openapi.json"])
def test_served_spec_equals_the_committed_spec(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert response.json() == json.loads(COMMITTED.read_bytes())


def test_docs_ui_is_served_as_html(client: Client) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "SwaggerUIBundle" in response.text


def test_docs_ui_loads_only_assets_served_by_the_service(client: Client) -> None:
    html = client.get("/docs").text
    refs = ASSET_REF.findall(html)
    assert len(refs) >= 3, refs  # the bundle, the preset and the stylesheet at least
    for ref in refs:
        assert ref.startswith("/"), f"{ref} is not served by svc"
        assert not ref.startswith("//"), f"{ref} is not served by svc"
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs", "googleapis", "swagger.io"):
        assert cdn not in html


def test_docs_ui_assets_are_served(client: Client) -> None:
    refs = ASSET_REF.findall(client.get("/docs").text)
    for ref in refs:
        response = client.get(ref)
        assert response.status_code == 200, ref
        assert len(response.content) > 100, ref
    assert any(ref.endswith(".js") for ref in refs)
    assert any(ref.endswith(".css") for ref in refs)
