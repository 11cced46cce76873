"""Routes for the lab's traffic generator: a slow endpoint, and a fault switch that is off unless configured."""

from __future__ import annotations

import asyncio
from typing import Annotated

import msgspec
from litestar import get
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from svc.problems import problem_spec

__all__ = ["InjectedFaultError", "handle_fault", "handle_slow"]

MAX_SLOW_MS = 5000


class InjectedFaultError(RuntimeError):
    """Raised by GET /fault: a 500 on purpose, so the lab can show an error's whole trail."""


class Slept(msgspec.Struct):
    """How long the request slept."""

    slept_ms: int


def handle_slow() -> HTTPRouteHandler:
    """GET /slow?ms=N: answers after N milliseconds (at most 5 s), for latency panels and shutdown tests."""

    @get("/slow", tags=["lab"], summary="Respond after a delay", responses={400: problem_spec("Invalid delay")})
    async def slow(ms: Annotated[int, Parameter(ge=0, le=MAX_SLOW_MS, description="Delay in ms")] = 100) -> Slept:
        await asyncio.sleep(ms / 1000)
        return Slept(slept_ms=ms)

    return slow


def handle_fault() -> HTTPRouteHandler:
    """GET /fault: raises an unhandled error. Only routed when FAULTS_ENABLED=true."""

    @get(
        "/fault",
        tags=["lab"],
        summary="Fail on purpose (FAULTS_ENABLED only)",
        responses={400: problem_spec("Invalid tag"), 500: problem_spec("The injected fault")},
    )
    async def fault(tag: Annotated[str | None, Parameter(max_length=64, pattern=r"^[A-Za-z0-9._-]*$")] = None) -> None:
        raise InjectedFaultError(f"injected fault{f' {tag}' if tag else ''}")

    return fault
