"""Test-only helpers: the log contract, and the pytest plugin of store fixtures (PostgreSQL, store parameters)."""
