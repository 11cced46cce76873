"""Fixtures for the Kubernetes manifest tests: every target rendered once per session by the real kustomize."""

from __future__ import annotations

import pytest

from tests.k8s.manifests import TARGETS, Manifest, kustomize_build
from tests.peers.binaries import peer


@pytest.fixture(scope="session")
def kustomize() -> str:
    """kustomize from scripts/install-peers (built from tests/k8s/tools/go.mod); skip or fail without it."""
    return peer("kustomize")


@pytest.fixture(scope="session")
def rendered(kustomize: str) -> dict[str, list[Manifest]]:
    """Target directory under deploy/k8s -> the objects `kustomize build` makes of it."""
    return {target: kustomize_build(kustomize, target) for target in TARGETS}


@pytest.fixture(scope="session")
def base(rendered: dict[str, list[Manifest]]) -> list[Manifest]:
    """deploy/k8s/base, rendered."""
    return rendered["base"]
