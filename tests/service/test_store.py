"""The Store contract (svc/store.py): what both stores promise, run against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from svc.config import Config
from svc.store import DuplicateSlugError, LinkRow, Store
from svc.stores import create_store

T = TypeVar("T")


def _on_store(config: Config, work: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store, run work on it, close it."""

    async def run() -> T:
        store = create_store(config)
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def test_an_inserted_link_is_read_back_with_no_hits(store_config: Config) -> None:
    async def work(store: Store) -> tuple[LinkRow, LinkRow | None]:
        return await store.insert("a", "https://example.com/a"), await store.get("a")

    inserted, read = _on_store(store_config, work)
    assert read == inserted
    assert (inserted.slug, inserted.url, inserted.hits) == ("a", "https://example.com/a", 0)


def test_an_unknown_slug_reads_as_none(store_config: Config) -> None:
    async def work(store: Store) -> object:
        return await store.get("missing")

    assert _on_store(store_config, work) is None


def test_a_second_insert_of_a_slug_is_a_duplicate_slug_error(store_config: Config) -> None:
    async def work(store: Store) -> None:
        await store.insert("a", "https://example.com/1")
        with pytest.raises(DuplicateSlugError):
            await store.insert("a", "https://example.com/2")

    _on_store(store_config, work)


def test_a_hit_counts_and_answers_the_url_and_an_unknown_slug_answers_none(store_config: Config) -> None:
    async def work(store: Store) -> tuple[list[str | None], int]:
        await store.insert("a", "https://example.com/a")
        answers = [await store.hit("a"), await store.hit("a"), await store.hit("missing")]
        row = await store.get("a")
        return answers, row.hits if row else -1

    assert _on_store(store_config, work) == (["https://example.com/a", "https://example.com/a", None], 2)


def test_pages_follow_the_id_after_the_last_one_oldest_first(store_config: Config) -> None:
    async def work(store: Store) -> tuple[list[str], list[str]]:
        for n in range(5):
            await store.insert(f"s{n}", f"https://example.com/{n}")
        first = await store.page(0, 3)
        second = await store.page(first[-1].id, 3)
        return [row.slug for row in first], [row.slug for row in second]

    assert _on_store(store_config, work) == (["s0", "s1", "s2"], ["s3", "s4"])


def test_delete_removes_the_link_once(store_config: Config) -> None:
    async def work(store: Store) -> tuple[bool, bool, object]:
        await store.insert("a", "https://example.com/a")
        return await store.delete("a"), await store.delete("a"), await store.get("a")

    assert _on_store(store_config, work) == (True, False, None)


def test_an_open_store_answers_ping(store_config: Config) -> None:
    async def work(store: Store) -> None:
        await store.ping()

    _on_store(store_config, work)
