""".env.example names every variable docker-compose.yml reads, explains each, and its values are the defaults."""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.peers.binaries import peer

from .files import COMPOSE, REPO

ENV_EXAMPLE = REPO / ".env.example"
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error} ... as Compose interpolates them ($${...} is escaped).
REFERENCE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+]([^}]*))?\}")


def _compose_defaults() -> dict[str, str]:
    return {m.group(1): m.group(2) or "" for m in REFERENCE.finditer(COMPOSE.read_text())}


def _example() -> dict[str, tuple[str, list[str]]]:
    """name -> (value, the comment lines right above it)."""
    entries: dict[str, tuple[str, list[str]]] = {}
    comments: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("#"):
            comments.append(line)
        elif "=" in line:
            name, value = line.split("=", 1)
            entries[name] = (value, comments)
            comments = []
        else:
            comments = []
    return entries


def test_env_example_has_every_variable_the_compose_file_reads_and_no_other() -> None:
    assert set(_compose_defaults()) >= {"SENTRY_DSN", "LOADGEN_RPS", "LOADGEN_MIX", "GRAFANA_ADMIN_PASSWORD"}
    assert set(_example()) == set(_compose_defaults())


def test_every_variable_in_env_example_is_explained() -> None:
    unexplained = [name for name, (_, comments) in _example().items() if not comments]
    assert unexplained == []


def test_env_example_values_are_the_compose_defaults() -> None:
    defaults = _compose_defaults()
    assert {name: value for name, (value, _) in _example().items()} == defaults


def test_compose_resolves_the_same_with_and_without_env_example() -> None:
    binary = peer("docker-compose")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}

    def config(*extra: str) -> object:
        command = [binary, "--project-directory", str(REPO), "-f", str(COMPOSE), *extra, "config", "--format", "json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert config("--env-file", str(ENV_EXAMPLE)) == config()
