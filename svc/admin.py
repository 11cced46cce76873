"""The admin listener: metrics and debug endpoints, never exposed on the public port."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
import msgspec
from litestar import Litestar, MediaType, Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from svc.config import Config
from svc.metrics import Metrics
from svc.problems import handle_http_exception, handle_unexpected_exception
from svc.profiling import sample_profile

__all__ = ["create_admin_app"]

MAX_PROFILE_SECONDS = 60


class Alive(msgspec.Struct):
    """Admin liveness."""

    status: str


def handle_metrics(metrics: Metrics) -> HTTPRouteHandler:
    """GET /metrics: OpenMetrics with exemplars if the scraper asks for it, else the classic text format."""

    @get("/metrics", media_type=MediaType.TEXT, sync_to_thread=False)
    def expose(request: Request[Any, Any, Any]) -> Response[bytes]:
        body, content_type = metrics.render(request.headers.get("accept", ""))
        return Response(body, media_type=content_type)

    return expose


def handle_admin_healthz() -> HTTPRouteHandler:
    """GET /healthz on the admin port, for a container healthcheck that stays off the public port."""

    @get("/healthz", sync_to_thread=False)
    def healthz() -> Alive:
        return Alive(status="ok")

    return healthz


def handle_profile(enabled: bool) -> HTTPRouteHandler:
    """GET /debug/profile?seconds=N: a CPU profile of the live process as speedscope JSON."""

    @get("/debug/profile")
    async def profile(seconds: Annotated[float, Parameter(gt=0, le=MAX_PROFILE_SECONDS)] = 10) -> dict[str, Any]:
        if not enabled:
            raise NotFoundException("profiling is off; set PROFILING_ENABLED=true")
        # The sampler blocks; a worker thread keeps the event loop serving while it watches.
        return await anyio.to_thread.run_sync(sample_profile, seconds)

    return profile


def create_admin_app(config: Config, metrics: Metrics) -> Litestar:
    """A fresh admin app over the service's metrics."""
    return Litestar(
        route_handlers=[handle_metrics(metrics), handle_admin_healthz(), handle_profile(config.profiling_enabled)],
        exception_handlers={HTTPException: handle_http_exception, Exception: handle_unexpected_exception},
        openapi_config=None,
        logging_config=None,
        debug=False,
    )
