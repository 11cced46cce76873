"""Where the lab's files are, and how the tests read them."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY = REPO / "deploy"
FLUENT_BIT = DEPLOY / "fluent-bit" / "fluent-bit.yaml"
INDEX_TEMPLATE = DEPLOY / "elasticsearch" / "index-template.json"
ILM_POLICY = DEPLOY / "elasticsearch" / "ilm-policy.json"
LAB_CHECK = REPO / "scripts" / "lab-check"


def load_yaml(path: Path) -> Any:
    """A YAML file as plain data."""
    return yaml.safe_load(path.read_text())


def load_json(path: Path) -> Any:
    """A JSON file as plain data."""
    return json.loads(path.read_text())


def compose() -> dict[str, Any]:
    """docker-compose.yml with YAML anchors and merge keys resolved (as Compose itself reads them)."""
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def services() -> dict[str, dict[str, Any]]:
    """The compose services by name."""
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def load_script(path: Path, name: str) -> ModuleType:
    """Import a script by path (deploy/*.py, scripts/lab-check has no .py suffix) as a fresh module."""
    loader_spec = importlib.util.spec_from_loader(name, importlib.machinery.SourceFileLoader(name, str(path)))
    assert loader_spec is not None
    assert loader_spec.loader is not None
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module  # dataclasses look their module up while the class body runs
    loader_spec.loader.exec_module(module)
    return module
