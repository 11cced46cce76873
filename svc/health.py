"""Health, readiness and build info: what probes and humans ask a running service."""

from __future__ import annotations

import asyncio
import enum
import time
from datetime import UTC, datetime

import msgspec
from litestar import get
from litestar.exceptions import ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler

from svc.buildinfo import BuildInfo
from svc.problems import problem_spec
from svc.store import Store, StoreUnavailableError

__all__ = ["Lifecycle", "Phase", "VersionInfo", "handle_healthz", "handle_readyz", "handle_version"]

# A readiness probe that hangs is worse than one that fails: the database gets this long to answer.
DB_PING_TIMEOUT = 1.0


class Phase(enum.Enum):
    """Where the process is in its life; /readyz answers 200 only while SERVING."""

    STARTING = "starting"
    SERVING = "serving"
    DRAINING = "draining"


class Lifecycle:
    """The process phase and start time, shared by the readiness probe and the shutdown sequence."""

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self.started_at = datetime.now(UTC)
        self._started_monotonic = time.monotonic()

    def uptime(self) -> float:
        """Seconds since the process started."""
        return time.monotonic() - self._started_monotonic


class Health(msgspec.Struct):
    """Liveness answer."""

    status: str


class VersionInfo(msgspec.Struct):
    """Build info and uptime; unknown values are null."""

    version: str | None
    commit: str | None
    commit_time: str | None
    dirty: bool | None
    python: str
    started_at: str
    uptime_seconds: float


def handle_healthz() -> HTTPRouteHandler:
    """GET /healthz: the process is alive and its event loop answers."""

    @get("/healthz", tags=["health"], summary="Liveness", cache_control=None)
    async def healthz() -> Health:
        return Health(status="ok")

    return healthz


def handle_readyz(lifecycle: Lifecycle, db: Store) -> HTTPRouteHandler:
    """GET /readyz: 200 while serving and the database answers; 503 with the reason otherwise.

    A full disk leaves it 200: reads still work, writes answer 507, and taking the replica out of rotation
    would not free a byte (docs/scaling.md).
    """

    @get(
        "/readyz",
        tags=["health"],
        summary="Readiness",
        responses={503: problem_spec("Not ready: starting, draining, or the database failed")},
    )
    async def readyz() -> Health:
        if lifecycle.phase is not Phase.SERVING:
            raise ServiceUnavailableException(f"service is {lifecycle.phase.value}")
        try:
            await asyncio.wait_for(db.ping(), DB_PING_TIMEOUT)
        except StoreUnavailableError as exc:
            raise ServiceUnavailableException(
                f"database unavailable: {exc.detail}"[:200], headers={"Retry-After": str(exc.retry_after)}
            ) from exc
        except Exception as exc:
            raise ServiceUnavailableException(f"database unavailable: {type(exc).__name__}") from exc
        return Health(status="ready")

    return readyz


def handle_version(lifecycle: Lifecycle, build: BuildInfo) -> HTTPRouteHandler:
    """GET /version: what is running, since when."""

    @get("/version", tags=["health"], summary="Build info and uptime")
    async def version() -> VersionInfo:
        return VersionInfo(
            version=build.version,
            commit=build.commit,
            commit_time=build.commit_time,
            dirty=build.dirty,
            python=build.python,
            started_at=lifecycle.started_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            uptime_seconds=round(lifecycle.uptime(), 3),
        )

    return version
