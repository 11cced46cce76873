"""harness.mix: the weighted draw follows its weights and refuses bad ones; a planner makes each request by name."""

from __future__ import annotations

import ast
import random
import sys

import pytest
import yaml

from harness.checkout import REPO
from harness.mix import Call, pick, planner


def test_pick_follows_the_weights_and_never_draws_a_zero() -> None:
    rng = random.Random(7)
    picks = [pick({"read": 3, "create": 1, "fault": 0}, rng) for _ in range(4000)]
    assert "fault" not in picks
    assert 0.7 < picks.count("read") / len(picks) < 0.8


@pytest.mark.parametrize("weights", [{}, {"read": 0}, {"read": 1, "create": -1}])
def test_pick_refuses_weights_that_cannot_draw(weights: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="weight"):
        pick(weights, random.Random(1))


def test_the_planner_makes_request_i_with_the_drawn_makers_own_index() -> None:
    plan = planner(
        {"read": 1, "create": 0},
        {"read": lambda i: Call("GET", f"/links/s{i}"), "create": lambda i: Call("POST", "/links")},
        random.Random(1),
    )
    assert [plan(i) for i in range(3)] == [Call("GET", f"/links/s{i}") for i in range(3)]


def test_the_planner_refuses_weights_and_makers_that_do_not_match() -> None:
    with pytest.raises(ValueError, match="same names"):
        planner({"read": 1, "typo": 1}, {"read": lambda i: Call("GET", "/")}, random.Random(1))


def test_mix_imports_only_the_standard_library() -> None:
    # deploy/loadgen imports it inside the svc image, which has svc's packages and no others.
    tree = ast.parse((REPO / "harness" / "mix.py").read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m for m in modules if m.split(".")[0] not in sys.stdlib_module_names | {"__future__"}} == set()


def test_the_loadgen_container_can_import_it() -> None:
    # The loadgen runs in the svc image: compose mounts harness/ under the one PYTHONPATH entry.
    loadgen = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["loadgen"]
    mounts = {target: source for source, target in (str(v).removesuffix(":ro").split(":") for v in loadgen["volumes"])}
    (root,) = loadgen["environment"]["PYTHONPATH"].split(":")
    assert mounts.get(f"{root}/harness") == "./harness"
