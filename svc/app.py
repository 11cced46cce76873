"""The public app: the whole HTTP surface in one routes list, wrapped by the middleware in one place."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, cast

import swagger_ui_bundle
from litestar import Litestar, Request, get
from litestar.enums import OpenAPIMediaType
from litestar.exceptions import ClientException, HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.router import Router
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router
from litestar.types import ASGIApp, BeforeMessageSendHookHandler, HTTPScope, Message, Scope
from opentelemetry import trace

from svc import health, lab, links
from svc.buildinfo import BuildInfo
from svc.config import Config
from svc.errors import request_context
from svc.health import Lifecycle, Phase
from svc.logs import REQUEST_ID
from svc.middleware import RequestTelemetryMiddleware
from svc.problems import handle_http_exception, handle_unexpected_exception
from svc.store import SchemaTooNewError, Store
from svc.telemetry import Telemetry

__all__ = ["build_litestar", "public_app", "routes"]

log = logging.getLogger("svc.app")

DOCS_ASSETS = "/docs-assets"
# Swagger UI's dist files (5.x, reads OpenAPI 3.1) from the pinned swagger-ui-bundle-v2 package; served locally.
SWAGGER_DIR = Path(swagger_ui_bundle.swagger_ui_path)


def routes(
    config: Config, lifecycle: Lifecycle, build: BuildInfo, db: Store, telemetry: Telemetry
) -> list[HTTPRouteHandler | Router]:
    """Every endpoint the public listener serves."""
    metrics = telemetry.metrics
    surface: list[HTTPRouteHandler | Router] = [
        health.handle_healthz(),
        health.handle_readyz(lifecycle, db),
        health.handle_version(lifecycle, build),
        links.handle_create_link(db, metrics),
        links.handle_list_links(db),
        links.handle_get_link(db),
        links.handle_delete_link(db),
        links.handle_redirect(db, metrics),
        lab.handle_slow(),
        handle_openapi_json(),
        create_static_files_router(DOCS_ASSETS, directories=[SWAGGER_DIR], include_in_schema=False),
    ]
    if config.faults_enabled:
        surface.append(lab.handle_fault())
    return surface


def handle_openapi_json() -> HTTPRouteHandler:
    """GET /openapi.json: the spec at its conventional root path too (Litestar serves it under /docs/)."""

    @get("/openapi.json", include_in_schema=False, media_type=OpenAPIMediaType.OPENAPI_JSON, sync_to_thread=False)
    def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return request.app.openapi_schema.to_schema()

    return openapi_json


def _error_reporter(telemetry: Telemetry) -> Any:
    async def report_exception(exc: Exception, asgi_scope: Scope) -> None:
        # Raised on purpose (404, 409, 503 while draining...) is an answer, not an error worth an alert.
        if isinstance(exc, HTTPException):
            return
        scope = cast(HTTPScope, asgi_scope)
        route = scope.get("path_template")
        log.error("unhandled %s in %s", type(exc).__name__, route or scope["path"], exc_info=exc)
        span = trace.get_current_span()
        span.record_exception(exc)
        span_ctx = span.get_span_context()
        ids = (f"{span_ctx.trace_id:032x}", f"{span_ctx.span_id:016x}") if span_ctx.is_valid else None
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        request = request_context(
            scope["method"], scope.get("scheme", "http"), host, scope["path"], scope["query_string"].decode(), headers
        )
        # Building the event walks the traceback and reads source files (~3 ms): off the event loop, so an error
        # storm slows only the failing requests, not the ones beside them.
        await asyncio.to_thread(telemetry.errors.report, exc, request, route, REQUEST_ID.get(), ids)

    return report_exception


class SvcRequest(Request[Any, Any, Any]):
    """Litestar's request, except that every JSON body msgspec cannot decode is the client's 400, never a 500."""

    async def json(self) -> Any:
        # Litestar 2.x maps only msgspec's DecodeError to a 400; msgspec raises these two for other bad bodies.
        try:
            return await super().json()
        except UnicodeDecodeError:  # invalid UTF-8 inside a JSON string
            raise ClientException("the body is not valid UTF-8") from None
        except RecursionError:  # "[[[[...": nesting deeper than msgspec's recursion limit
            raise ClientException("the body is nested too deeply") from None


def litestar_4169_options_allow() -> BeforeMessageSendHookHandler:
    """Shim for litestar-org/litestar#4169 (https://github.com/litestar-org/litestar/issues/4169, fixed in 3.0).

    Litestar 2.x answers OPTIONS on a path served by several handlers with the Allow header of the first
    handler's route only (OPTIONS /links said "OPTIONS, POST"). This `before_send` hook (a documented extension
    point) rewrites that header with every method the path's route serves (`app.routes`, read once).
    tests/service/test_litestar_shim.py fails once Litestar is fixed: then remove the shim.
    """
    allow: dict[str, bytes] = {}

    async def rewrite_allow(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start" or scope.get("method") != "OPTIONS":
            return
        if not allow:
            for route in scope["app"].routes:
                if isinstance(route, HTTPRoute):
                    allow[route.path_format] = ", ".join(sorted(route.methods)).encode()
        methods = allow.get(cast(HTTPScope, scope).get("path_template") or "")
        if methods is not None:
            headers = [(k, v) for k, v in message.get("headers", ()) if k.lower() != b"allow"]
            message["headers"] = [*headers, (b"allow", methods)]

    return rewrite_allow


def build_litestar(config: Config, lifecycle: Lifecycle, build: BuildInfo, db: Store, telemetry: Telemetry) -> Litestar:
    """The Litestar app alone, without svc's middleware (the OpenAPI export and the bare benchmark serve it)."""

    async def on_startup() -> None:
        try:
            await db.open()
        except SchemaTooNewError as exc:
            log.error("refusing to start: %s", exc)  # one line: the traceback says nothing more
            raise
        except Exception:
            # uvicorn reports a failed startup with the traceback as its message; this line has the error.* fields.
            log.exception("cannot open the database (%s)", db.description)
            raise
        lifecycle.phase = Phase.SERVING

    app = Litestar(
        route_handlers=routes(config, lifecycle, build, db, telemetry),
        on_startup=[on_startup],
        on_shutdown=[db.close],
        exception_handlers={
            HTTPException: handle_http_exception,
            Exception: handle_unexpected_exception,
        },
        after_exception=[_error_reporter(telemetry)],
        before_send=[litestar_4169_options_allow()],
        request_class=SvcRequest,
        request_max_body_size=config.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="svc",
            version=build.version or "0",
            description="A URL shortener that shows the whole telemetry fan-out: traces, metrics, logs, errors.",
            path="/docs",
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                    favicon=f'<link rel="icon" type="image/png" href="{DOCS_ASSETS}/favicon-32x32.png">',
                )
            ],
        ),
        logging_config=None,
        debug=False,
    )
    return app


def public_app(config: Config, lifecycle: Lifecycle, build: BuildInfo, db: Store, telemetry: Telemetry) -> ASGIApp:
    """The public listener's app: the Litestar app under svc's middleware (svc.service assembles its parts)."""
    app: ASGIApp = build_litestar(config, lifecycle, build, db, telemetry)
    # Middleware, outermost last. One pass: request id, span, RED metrics and the access line.
    app = RequestTelemetryMiddleware(app, telemetry)
    return app
