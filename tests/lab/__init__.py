"""Static and contract checks of the docker-compose lab (no Docker daemon needed)."""
