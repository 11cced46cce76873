"""The links store's contract: what the API needs from a database, and the errors it answers with."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DuplicateSlugError",
    "LinkRow",
    "SchemaTooNewError",
    "StorageFullError",
    "Store",
    "StoreError",
    "StoreUnavailableError",
]


@dataclass(frozen=True, slots=True)
class LinkRow:
    """A stored link."""

    id: int
    slug: str
    url: str
    created_at: str
    hits: int


class StoreError(Exception):
    """Base of every error a store raises on purpose."""


class DuplicateSlugError(StoreError):
    """The slug is taken (the unique constraint said so, not a check-then-insert)."""


class StoreUnavailableError(StoreError):
    """The database cannot answer now: down, too slow, or every pooled connection busy; worth a retry.

    `reason` is one of a fixed set ("unavailable", "timeout", "pool_exhausted", "schema"), used as a metric label;
    `retry_after` is the Retry-After the answer suggests, in seconds.
    """

    def __init__(self, reason: str, detail: str, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


class StorageFullError(StoreError):
    """The disk under the database is full: writes fail until space frees, reads still work."""


class SchemaTooNewError(Exception):
    """The database was migrated by newer code than this; running on it could corrupt data."""


class Store(Protocol):
    """The links table, whatever holds it. Every method may raise StoreUnavailableError."""

    @property
    def description(self) -> str:
        """Where the data lives, safe to log (never a password)."""
        ...

    async def open(self) -> None:
        """Prepare the store; a database that is down is not an error here (readiness reports it)."""
        ...

    async def close(self) -> None:
        """Release every connection."""
        ...

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query with the schema in place."""
        ...

    async def insert(self, slug: str, url: str) -> LinkRow:
        """Store a new link; DuplicateSlugError if the slug exists, StorageFullError if the disk is."""
        ...

    async def get(self, slug: str) -> LinkRow | None:
        """The link with this slug, or None."""
        ...

    async def page(self, after_id: int, limit: int) -> list[LinkRow]:
        """Up to limit links with id > after_id, oldest first (keyset pagination)."""
        ...

    async def delete(self, slug: str) -> bool:
        """Delete the link; False if there was none."""
        ...

    async def hit(self, slug: str) -> str | None:
        """Count a redirect and return its URL, or None if the slug is unknown."""
        ...
