"""svc's benchmark: telemetry cost against bare Litestar, the naive stack and Go. Run `uv run python -m bench`."""
