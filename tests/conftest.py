"""Suite-wide pytest configuration."""

from __future__ import annotations

# Fixtures any test may ask for: the throwaway PostgreSQL cluster and the store parametrisation.
pytest_plugins = ["tests.support.postgres_fixtures"]
