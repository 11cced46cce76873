"""Requests to make and a weighted mix of them: what the reliability runs and the lab's load generator send.

Standard library only: deploy/loadgen imports it inside the svc image, which carries svc's packages and no others.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Call", "Plan", "pick", "planner"]


@dataclass(frozen=True, slots=True)
class Call:
    """One request: method, path (with query), optional JSON body; `route` is the template a client span is named
    by, `op` the mix entry that made it, `injected` marks a failure asked for on purpose."""

    method: str
    path: str
    json: Any = None
    route: str = ""
    op: str = ""
    injected: bool = False


# A request maker: the index of the request in the run -> the request to send.
Plan = Callable[[int], Call]


def pick(weights: Mapping[str, float], rng: random.Random) -> str:
    """One name drawn with the weights; a weight of 0 is never drawn; ValueError when no weight is positive."""
    if any(weight < 0 for weight in weights.values()):
        raise ValueError(f"negative weight in {dict(weights)}")
    names = [name for name, weight in weights.items() if weight > 0]
    if not names:
        raise ValueError(f"no positive weight in {dict(weights)}")
    return rng.choices(names, weights=[weights[name] for name in names])[0]


def planner(weights: Mapping[str, float], makers: Mapping[str, Plan], rng: random.Random) -> Plan:
    """A plan whose request i is made by the maker of a name drawn with the weights (one maker per name)."""
    if set(weights) != set(makers):
        raise ValueError(f"weights name {sorted(weights)}, makers {sorted(makers)}: they must be the same names")
    pick(weights, random.Random(0))  # the same checks now, not at the first request

    def plan(index: int) -> Call:
        return makers[pick(weights, rng)](index)

    return plan
