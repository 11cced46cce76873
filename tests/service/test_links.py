"""The links API in-process on both stores: create, list, get, delete, redirect, and every way to get it wrong."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from litestar.testing import TestClient
from litestar.types import ASGIApp

from svc.config import Config
from tests.service.support import app_client, assert_problem

Client = TestClient[ASGIApp]
URL = "https://example.com/docs?page=1"


@pytest.fixture
def config(store_config: Config) -> Config:
    """Every test here runs on SQLite and on PostgreSQL: the API must not tell them apart."""
    return store_config


def _create(client: Client, url: str = URL, slug: str | None = None) -> dict[str, object]:
    body: dict[str, str] = {"url": url} if slug is None else {"url": url, "slug": slug}
    response = client.post("/links", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_create_with_slug_returns_201_and_the_link(client: Client) -> None:
    response = client.post("/links", json={"url": URL, "slug": "docs"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    link = response.json()
    assert {k: link[k] for k in ("slug", "url", "hits")} == {"slug": "docs", "url": URL, "hits": 0}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", link["created_at"])


def test_create_without_slug_generates_a_valid_one(client: Client) -> None:
    first = _create(client)
    second = _create(client)
    for link in (first, second):
        assert re.fullmatch(r"[a-z0-9-]{3,32}", str(link["slug"])), link
    assert first["slug"] != second["slug"]
    assert client.get(f"/links/{first['slug']}").json()["url"] == URL


def test_create_with_a_taken_slug_returns_409_problem(client: Client) -> None:
    _create(client, slug="taken")
    body = assert_problem(client.post("/links", json={"url": "https://other.example", "slug": "taken"}), 409)
    assert "taken" in body["detail"]
    assert client.get("/links/taken").json()["url"] == URL, "the first link must be unchanged"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "javascript:alert(1)",
        "example.com",
        "https://",
        "https://example.com/a b",
        "https://example.com/\nx",
        "",
        "https://example.com/" + "a" * 2029,  # 2,049 characters
    ],
)
def test_create_with_an_invalid_url_returns_400_problem(client: Client, url: str) -> None:
    assert_problem(client.post("/links", json={"url": url}), 400)


def test_create_accepts_a_url_of_exactly_2048_characters(client: Client) -> None:
    url = "https://example.com/" + "a" * 2028
    assert len(url) == 2048
    assert _create(client, url=url)["url"] == url


@pytest.mark.parametrize("slug", ["ab", "a" * 33, "Docs", "doc_s", "doc s", "dócs", "abc\n", "", "../etc"])
def test_create_with_an_invalid_slug_returns_400_problem(client: Client, slug: str) -> None:
    assert_problem(client.post("/links", json={"url": URL, "slug": slug}), 400)
    assert client.get("/links").json()["items"] == []


def test_create_accepts_slugs_at_the_length_bounds(client: Client) -> None:
    assert _create(client, slug="a-1")["slug"] == "a-1"
    assert _create(client, slug="z" * 32)["slug"] == "z" * 32


def test_create_with_an_unknown_field_returns_400_problem_naming_it(client: Client) -> None:
    body = assert_problem(client.post("/links", json={"url": URL, "owner": "me"}), 400)
    assert any("owner" in error["message"] for error in body["errors"]), body


@pytest.mark.parametrize("payload", [b"{bad json", b"", b"[]", b'"https://example.com"', b'{"url": 5}', b"{}"])
def test_create_with_a_malformed_body_returns_400_problem(client: Client, payload: bytes) -> None:
    response = client.post("/links", content=payload, headers={"content-type": "application/json"})
    assert_problem(response, 400)


def test_create_problem_never_echoes_the_rejected_value(client: Client) -> None:
    hostile = "<script>" + "x" * 100
    body = assert_problem(client.post("/links", json={"url": URL, "slug": hostile}), 400)
    assert "<script>" not in str(body)


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/xml"]
)
def test_create_with_a_non_json_content_type_returns_415_problem(client: Client, content_type: str) -> None:
    response = client.post("/links", content=b'{"url": "https://example.com"}', headers={"content-type": content_type})
    assert_problem(response, 415)
    assert client.get("/links").json()["items"] == [], "nothing may be created from a non-JSON body"


def test_create_without_a_content_type_returns_415_problem(client: Client) -> None:
    response = client.post("/links", content=b'{"url": "https://example.com"}')
    assert "content-type" not in response.request.headers
    assert_problem(response, 415)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON", "application/ld+json"])
def test_create_accepts_json_media_types(client: Client, content_type: str) -> None:
    response = client.post("/links", content=b'{"url": "https://example.com"}', headers={"content-type": content_type})
    assert response.status_code == 201, response.text


def test_body_larger_than_max_body_bytes_returns_413_problem(config: Config) -> None:
    with app_client(config.replace(max_body_bytes=100)) as client:
        body = b'{"url": "https://example.com/' + b"a" * 100 + b'"}'
        assert_problem(client.post("/links", content=body, headers={"content-type": "application/json"}), 413)


def test_streamed_body_larger_than_max_body_bytes_returns_413_problem(config: Config) -> None:
    def chunks() -> object:
        for _ in range(10):
            yield b"x" * 50

    with app_client(config.replace(max_body_bytes=100)) as client:
        response = client.post("/links", content=chunks(), headers={"content-type": "application/json"})  # type: ignore[arg-type]
        assert "content-length" not in response.request.headers
        assert_problem(response, 413)


def test_body_of_exactly_max_body_bytes_is_accepted(config: Config) -> None:
    body = b'{"url": "https://example.com/"}'
    with app_client(config.replace(max_body_bytes=len(body))) as client:
        response = client.post("/links", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 201, response.text


def test_list_is_empty_on_a_fresh_database(client: Client) -> None:
    assert client.get("/links").json() == {"items": [], "next_cursor": None}


def test_list_pages_oldest_first_and_next_cursor_walks_every_link_once(client: Client) -> None:
    slugs = [f"link-{i}" for i in range(7)]
    for slug in slugs:
        _create(client, slug=slug)
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 3} if cursor is None else {"limit": 3, "cursor": cursor}
        page = client.get("/links", params=params).json()
        pages += 1
        assert len(page["items"]) <= 3
        seen += [item["slug"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "next_cursor never ended"
    assert seen == slugs
    assert pages == 3


def test_list_has_no_next_cursor_when_the_page_is_exactly_full(client: Client) -> None:
    for slug in ("one", "two"):
        _create(client, slug=slug)
    page = client.get("/links", params={"limit": 2}).json()
    assert [item["slug"] for item in page["items"]] == ["one", "two"]
    assert page["next_cursor"] is None


def test_list_default_page_size_is_20(client: Client) -> None:
    for i in range(21):
        _create(client, slug=f"s-{i:02d}")
    page = client.get("/links").json()
    assert len(page["items"]) == 20
    assert page["next_cursor"] is not None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=101", "limit=ten", "cursor=abc", "cursor=-1", "cursor=" + "9" * 19]
)
def test_list_with_bad_paging_parameters_returns_400_problem(client: Client, query: str) -> None:
    assert_problem(client.get(f"/links?{query}"), 400)


def test_get_returns_the_link(client: Client) -> None:
    created = _create(client, slug="docs")
    response = client.get("/links/docs")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize("slug", ["missing", "NOPE", "ab", "a" * 40])
def test_get_unknown_or_impossible_slug_returns_404_problem(client: Client, slug: str) -> None:
    assert_problem(client.get(f"/links/{slug}"), 404)


def test_delete_returns_204_and_the_link_is_gone(client: Client) -> None:
    _create(client, slug="gone")
    response = client.delete("/links/gone")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(client.get("/links/gone"), 404)
    assert_problem(client.get("/r/gone", follow_redirects=False), 404)


def test_delete_unknown_returns_404_problem(client: Client) -> None:
    assert_problem(client.delete("/links/missing"), 404)


def test_delete_twice_returns_404_the_second_time(client: Client) -> None:
    _create(client, slug="once")
    assert client.delete("/links/once").status_code == 204
    assert_problem(client.delete("/links/once"), 404)


def test_redirect_returns_307_to_the_url_and_counts_each_hit(client: Client) -> None:
    _create(client, slug="go-1")
    for _ in range(3):
        response = client.get("/r/go-1", follow_redirects=False)
        assert response.status_code == 307
        assert response.headers["location"] == URL
    assert client.get("/links/go-1").json()["hits"] == 3


def test_redirect_unknown_returns_404_problem_and_counts_nothing(client: Client) -> None:
    _create(client, slug="real")
    assert_problem(client.get("/r/unreal", follow_redirects=False), 404)
    assert client.get("/links/real").json()["hits"] == 0


def test_unsupported_method_returns_405_problem(client: Client) -> None:
    assert_problem(client.put("/links", json={"url": URL}), 405)


def test_concurrent_creates_of_one_slug_give_one_201_and_409s(config: Config) -> None:
    # The unique constraint decides, not a check-then-insert: requests racing for one slug cannot both win.
    with app_client(config) as client:

        async def race() -> list[int]:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=client.app), base_url="http://t") as http:
                body = {"url": URL, "slug": "contested"}
                responses = await asyncio.gather(*(http.post("/links", json=body) for _ in range(8)))
            return sorted(r.status_code for r in responses)

        statuses = client.blocking_portal.call(race)
        assert statuses == [201] + [409] * 7
        assert client.get("/links/contested").json()["url"] == URL
