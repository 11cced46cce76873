"""The domain: a URL shortener whose handlers give traces, logs and errors something real to show."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
from litestar import MediaType, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.exceptions import ClientException, HTTPException, NotFoundException, ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Body, FromPath, Parameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_409_CONFLICT, HTTP_415_UNSUPPORTED_MEDIA_TYPE, HTTP_507_INSUFFICIENT_STORAGE

from svc.metrics import Metrics
from svc.problems import problem_spec
from svc.store import DuplicateSlugError, LinkRow, StorageFullError, Store, StoreUnavailableError

__all__ = [
    "InsufficientStorageException",
    "Link",
    "LinkPage",
    "NewLink",
    "handle_create_link",
    "handle_delete_link",
    "handle_get_link",
    "handle_list_links",
    "handle_redirect",
    "store_answer",
]

log = logging.getLogger("svc.links")

MAX_URL = 2048
# An absolute http(s) URI as RFC 3986 spells it: printable ASCII only (IRIs are sent percent-encoded, hosts in
# punycode), a host name without userinfo ("https://bank.example@evil.example" is a phishing classic).
# In the schema so that every URL it calls valid is one POST /links accepts.
URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._-]+(:[0-9]{1,5})?([/?#][!-~]*)?$"
SLUG_PATTERN = r"^[a-z0-9-]{3,32}$"
_SLUG = re.compile(SLUG_PATTERN)
_JSON_MEDIA_TYPE = re.compile(r"application/(?:[a-z0-9.+-]+\+)?json")
_SLUG_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: slugs get read aloud
GENERATED_SLUG_LENGTH = 7
GENERATE_ATTEMPTS = 5


class NewLink(msgspec.Struct, forbid_unknown_fields=True):
    """A link to create; without a slug one is generated."""

    url: Annotated[
        str,
        msgspec.Meta(min_length=1, max_length=MAX_URL, pattern=URL_PATTERN, examples=["https://example.com/docs"]),
    ]
    slug: Annotated[str, msgspec.Meta(pattern=SLUG_PATTERN, examples=["docs"])] | None = None


class Link(msgspec.Struct):
    """A stored link."""

    slug: str
    url: str
    created_at: str
    hits: int


class LinkPage(msgspec.Struct):
    """One page of links, oldest first; pass next_cursor back as cursor for the next page."""

    items: list[Link]
    next_cursor: str | None


class ConflictException(ClientException):
    """The slug is taken."""

    status_code = HTTP_409_CONFLICT


class UnsupportedMediaTypeException(ClientException):
    """The body is not JSON."""

    status_code = HTTP_415_UNSUPPORTED_MEDIA_TYPE


class InsufficientStorageException(HTTPException):
    """The disk under the database is full: this write cannot be stored now (reads still work)."""

    status_code = HTTP_507_INSUFFICIENT_STORAGE


def store_answer(exc: StoreUnavailableError | StorageFullError) -> HTTPException:
    """503 with Retry-After while the database is away; 507 while its disk is full."""
    if isinstance(exc, StorageFullError):
        return InsufficientStorageException("no space left to store this; reads still work")
    return ServiceUnavailableException(
        f"the database is unavailable ({exc.reason}); retry later", headers={"Retry-After": str(exc.retry_after)}
    )


async def _require_json(request: Request[Any, Any, Any]) -> None:
    # Runs before the body is parsed: a text/plain or form body is what a cross-site "simple request" sends.
    if not _JSON_MEDIA_TYPE.fullmatch(request.content_type[0]):
        raise UnsupportedMediaTypeException("the body must be application/json")


def _link(row: LinkRow) -> Link:
    return Link(slug=row.slug, url=row.url, created_at=row.created_at, hits=row.hits)


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:  # "http://[" and friends: urlsplit raises on a malformed IPv6 host
        parts = urlsplit("")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        raise ClientException("url must be an absolute http(s) URL without spaces or control characters")


def _known_slug(slug: str) -> str:
    # A slug that cannot exist is simply not found: no need to tell a prober which rule it broke.
    if not _SLUG.fullmatch(slug):
        raise NotFoundException(f"no link with slug {slug!r}"[:120])
    return slug


UNAVAILABLE = {503: problem_spec("The database is unavailable; retry after Retry-After seconds")}
NOT_FOUND = {400: problem_spec("Invalid request"), 404: problem_spec("No link with that slug"), **UNAVAILABLE}
FULL = {507: problem_spec("No space left under the database; reads still work")}


def handle_create_link(db: Store, metrics: Metrics) -> HTTPRouteHandler:
    """POST /links: 201 with the link; 409 if the slug is taken; 400 for a bad URL or slug."""

    @post(
        "/links",
        tags=["links"],
        summary="Create a short link",
        responses={
            400: problem_spec("Invalid URL or slug"),
            409: problem_spec("Slug already taken"),
            413: problem_spec("Body too large"),
            415: problem_spec("Body is not application/json"),
            **UNAVAILABLE,
            **FULL,
        },
        before_request=_require_json,
    )
    async def create_link(
        # forbid_unknown_fields rejects extra fields; the schema says so too, for clients and fuzzers alike.
        data: Annotated[NewLink, Body(schema_extra={"additionalProperties": False})],
    ) -> Link:
        _check_url(data.url)
        if data.slug is not None and not _SLUG.fullmatch(data.slug):
            # The schema's pattern is searched with `$`, which also matches before a trailing newline.
            raise ClientException(f"slug must match {SLUG_PATTERN}")
        try:
            if data.slug is not None:
                try:
                    row = await db.insert(data.slug, data.url)
                except DuplicateSlugError:
                    raise ConflictException(f"slug {data.slug!r} is taken") from None
            else:
                row = await _insert_generated(db, data.url)
        except (StoreUnavailableError, StorageFullError) as exc:
            raise store_answer(exc) from None
        metrics.links_created.inc()
        log.info("link created", extra={"link.slug": row.slug})
        return _link(row)

    return create_link


async def _insert_generated(db: Store, url: str) -> LinkRow:
    for _ in range(GENERATE_ATTEMPTS):
        slug = "".join(secrets.choice(_SLUG_ALPHABET) for _ in range(GENERATED_SLUG_LENGTH))
        try:
            return await db.insert(slug, url)
        except DuplicateSlugError:
            continue
    raise ConflictException("could not generate a free slug; try again or choose one")


async def _url_without_counting(db: Store, slug: str) -> str | None:
    try:
        row = await db.get(slug)
    except StoreUnavailableError as exc:
        raise store_answer(exc) from None
    return None if row is None else row.url


def handle_list_links(db: Store) -> HTTPRouteHandler:
    """GET /links: a page of links, keyset-paginated."""

    @get(
        "/links",
        tags=["links"],
        summary="List links",
        responses={400: problem_spec("Invalid paging parameters"), **UNAVAILABLE},
    )
    async def list_links(
        limit: Annotated[int, Parameter(ge=1, le=100, description="Page size")] = 20,
        cursor: Annotated[
            str | None,
            Parameter(pattern=r"^[0-9]{1,18}$", max_length=18, description="next_cursor of the previous page"),
        ] = None,
    ) -> LinkPage:
        try:
            rows = await db.page(int(cursor) if cursor else 0, limit + 1)
        except StoreUnavailableError as exc:
            raise store_answer(exc) from None
        more = len(rows) > limit
        rows = rows[:limit]
        return LinkPage(items=[_link(r) for r in rows], next_cursor=str(rows[-1].id) if more else None)

    return list_links


def handle_get_link(db: Store) -> HTTPRouteHandler:
    """GET /links/{slug}."""

    @get("/links/{slug:str}", tags=["links"], summary="Get a link", responses=NOT_FOUND)
    async def get_link(slug: FromPath[str]) -> Link:
        try:
            row = await db.get(_known_slug(slug))
        except StoreUnavailableError as exc:
            raise store_answer(exc) from None
        if row is None:
            raise NotFoundException(f"no link with slug {slug!r}")
        return _link(row)

    return get_link


def handle_delete_link(db: Store) -> HTTPRouteHandler:
    """DELETE /links/{slug}: 204, or 404 if there was none."""

    @delete("/links/{slug:str}", tags=["links"], summary="Delete a link", responses={**NOT_FOUND, **FULL})
    async def delete_link(slug: FromPath[str]) -> None:
        try:
            deleted = await db.delete(_known_slug(slug))
        except (StoreUnavailableError, StorageFullError) as exc:
            raise store_answer(exc) from None
        if not deleted:
            raise NotFoundException(f"no link with slug {slug!r}")
        log.info("link deleted", extra={"link.slug": slug})

    return delete_link


def handle_redirect(db: Store, metrics: Metrics) -> HTTPRouteHandler:
    """GET /r/{slug}: 307 to the stored URL, counting the hit."""

    @get(
        "/r/{slug:str}",
        tags=["links"],
        summary="Follow a short link",
        status_code=307,
        # Redirect answers text/plain with an empty body; the spec must say so, not Litestar's default JSON.
        media_type=MediaType.TEXT,
        responses=NOT_FOUND,
        response_description="Redirect to the stored URL",
        response_headers=[
            ResponseHeader(name="location", description="The stored URL", required=True, documentation_only=True)
        ],
    )
    async def follow(slug: FromPath[str]) -> Response[None]:
        try:
            url = await db.hit(_known_slug(slug))
        except StoreUnavailableError as exc:
            raise store_answer(exc) from None
        except StorageFullError:
            # Counting the hit is the write; the redirect is a read: a full disk costs the count, not the answer.
            url = await _url_without_counting(db, slug)
        if url is None:
            raise NotFoundException(f"no link with slug {slug!r}")
        metrics.redirects.inc()
        return Redirect(url, status_code=307)

    return follow
