"""Where the peers' binaries are: env vars, scripts/install-peers' peers.env, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["ENV_VARS", "cache_dir", "find_peer", "is_executable", "read_env_file"]

# Binary name -> env var naming its path (the same keys scripts/install-peers writes into peers.env).
ENV_VARS = {
    "prometheus": "PROMETHEUS_BIN",
    "promtool": "PROMTOOL_BIN",
    "jaeger": "JAEGER_BIN",
    "docker-compose": "DOCKER_COMPOSE_BIN",
    "kustomize": "KUSTOMIZE_BIN",
    "otelcol-validate": "OTELCOL_VALIDATE_BIN",
    "wrk": "WRK_BIN",
    "chromium": "CHROMIUM_BIN",
    "spotlight": "SPOTLIGHT_BIN",
    "elasticsearch": "ELASTICSEARCH_BIN",  # the node's bin/server-args (stands in for the launcher)
    "elasticsearch-java": "ELASTICSEARCH_JAVA",  # the Java 21+ the node was assembled for
    "postgres": "POSTGRES_BIN",  # Debian's server binary; initdb sits beside it
}


def cache_dir() -> Path:
    """The installer's cache; the same expression as in scripts/install-peers."""
    if explicit := os.environ.get("SVC_PEERS_CACHE"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "svc-peers"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines of peers.env (comments and blank lines ignored; no shell quoting is ever written)."""
    if not path.is_file():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            entries[key.strip()] = value.strip()
    return entries


def is_executable(path: str | None) -> bool:
    """Whether path names an executable regular file."""
    return bool(path) and Path(str(path)).is_file() and os.access(str(path), os.X_OK)


def find_peer(name: str) -> str | None:
    """The path of a peer binary, or None when it is nowhere to be found."""
    var = ENV_VARS.get(name)
    candidates = [os.environ.get(var) if var else None]
    if var:
        candidates.append(read_env_file(cache_dir() / "peers.env").get(var))
    candidates.append(shutil.which(name))
    for candidate in candidates:
        if candidate and is_executable(candidate):
            return candidate
    return None
