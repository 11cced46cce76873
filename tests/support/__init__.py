"""Shared test helpers: start the real service and wait for it, poll with deadlines."""
