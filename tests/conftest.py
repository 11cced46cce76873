"""Suite-wide pytest configuration."""

from __future__ import annotations

# Fixtures any test may ask for: the throwaway PostgreSQL cluster, the store parametrisation, a scratch git tree.
pytest_plugins = ["tests.support.postgres_fixtures", "tests.support.git_fixtures"]
