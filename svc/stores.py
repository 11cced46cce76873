"""Which store the configuration asks for: PostgreSQL when DATABASE_URL is set, else the SQLite file."""

from __future__ import annotations

from opentelemetry.trace import Tracer

from svc.config import Config
from svc.metrics import Metrics
from svc.postgres_store import PoolSettings, PostgresStore
from svc.sqlite_store import SqliteStore
from svc.store import Store

__all__ = ["create_store"]


def create_store(config: Config, tracer: Tracer | None = None, metrics: Metrics | None = None) -> Store:
    """A new, unopened store for this configuration."""
    if config.database_url is not None:
        pool = PoolSettings(config.database_pool_size, config.database_pool_timeout, config.database_query_timeout)
        return PostgresStore(config.database_url, pool, tracer, metrics)
    return SqliteStore(config.database_path, tracer, metrics, busy_timeout=config.database_query_timeout)
