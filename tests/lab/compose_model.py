"""Small readers over docker-compose.yml's services: ports, sizes, one-shot jobs (Compose's own short syntaxes)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}


@dataclass(frozen=True)
class Published:
    """One published port: host address and port, container port."""

    host_ip: str
    host_port: int
    container_port: int


def parse_port(entry: Any) -> Published:
    """Compose's short ("127.0.0.1:8000:8000", "8000:8000", "8000") or long ({target, published, host_ip}) port."""
    if isinstance(entry, dict):
        return Published(str(entry.get("host_ip", "")), int(entry.get("published", 0)), int(entry["target"]))
    text = str(entry).split("/")[0]
    parts = text.rsplit(":", 2)
    if len(parts) == 3:
        return Published(parts[0].strip("[]"), int(parts[1]), int(parts[2]))
    if len(parts) == 2:
        return Published("", int(parts[0]), int(parts[1]))
    return Published("", 0, int(parts[0]))


def published(service: dict[str, Any]) -> list[Published]:
    """The service's published ports."""
    return [parse_port(p) for p in service.get("ports", [])]


def container_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service listens on inside the compose network (published targets plus `expose`)."""
    return {p.container_port for p in published(service)} | {
        int(str(e).split("/")[0]) for e in service.get("expose", [])
    }


def size_bytes(value: Any) -> int:
    """'256m' / '1.5g' / 1048576 -> bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmgb]{0,2})", str(value).strip().lower())
    assert match, f"not a size: {value!r}"
    return int(float(match[1]) * UNITS[match[2]])


def is_one_shot(service: dict[str, Any]) -> bool:
    """A job that runs to completion (restart "no"), as opposed to a long-running service."""
    return str(service.get("restart", "no")) == "no"


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as a dict, from either the map or the KEY=VALUE list form."""
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(str(item).split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}
