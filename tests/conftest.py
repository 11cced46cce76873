"""Suite-wide pytest configuration."""

from __future__ import annotations

import sys
from pathlib import Path

# `tests.support` is importable from every test module without installing the tests as a package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Fixtures any test may ask for: the throwaway PostgreSQL cluster and the store parametrisation.
pytest_plugins = ["tests.support.postgres_fixtures"]
